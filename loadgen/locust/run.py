"""Run Locust headless, in library mode, in this process's network namespace.

    ip netns exec <pod-ns> python -m loadgen.locust.run --plan-json JSON|@FILE [--out FILE]

Prints (or writes to ``--out``) a :class:`loadgen.locust.stats.LocustStats` as JSON.
With ``workers: N`` in the plan this process is the master: it starts N worker processes
(``--role worker``), each in ``worker_netns[i]`` when given, and merges their stats.
Exit codes: 0 ran, 2 bad input, 3 the run failed.
"""

from __future__ import annotations

import sys
import time

import gevent  # type: ignore[import-untyped]

# Locust monkey-patches the standard library with gevent on import: it must come first.
import locust
from locust.env import Environment
from locust.runners import STATE_STOPPED, Runner

from loadgen.locust import distributed as D
from loadgen.locust.distributed import POLL_S
from loadgen.locust.plan import LocustPlan
from loadgen.locust.shapes import shape_for
from loadgen.locust.stats import LocustStats, from_locust, merge_counts
from loadgen.locust.users import CONNECTIONS, configure

__all__ = ["locust", "main"]


def _environment(plan: LocustPlan) -> Environment:
    return Environment(
        user_classes=[configure(plan)],
        shape_class=shape_for(plan.schedule()),
        host=plan.base_url,
        # let a request in flight finish on stop, so every connection opened is accounted
        stop_timeout=plan.connect_timeout_s + plan.request_timeout_s,
    )


def _drive(env: Environment, runner: Runner, plan: LocustPlan) -> float:
    """Start, run for ``duration_s`` (or until the shape ends), stop; return elapsed s."""
    t0 = time.monotonic()
    if env.shape_class is not None:
        runner.start_shape()
    else:
        runner.start(plan.effective_users, plan.effective_spawn_rate)
    deadline = t0 + plan.duration_s
    while time.monotonic() < deadline:
        gevent.sleep(POLL_S)
        if env.shape_class is not None and runner.state == STATE_STOPPED:
            break
    runner.stop()
    return time.monotonic() - t0


def run_single(plan: LocustPlan) -> LocustStats:
    env = _environment(plan)
    runner = env.create_local_runner()
    try:
        elapsed = _drive(env, runner, plan)
        return from_locust(
            env.stats.total.serialize(),
            user=plan.user,
            workers=0,
            elapsed_s=elapsed,
            new_connections=CONNECTIONS.total,
            conns_per_s=dict(CONNECTIONS.per_s),
            errors=env.stats.serialize_errors(),
        )
    finally:
        runner.quit()


def run_master(plan: LocustPlan) -> LocustStats:
    env = _environment(plan)

    def collect(elapsed: float, workers: list[D.WorkerTally]) -> LocustStats:
        return from_locust(
            env.stats.total.serialize(),
            user=plan.user,
            workers=plan.workers,
            elapsed_s=elapsed,
            new_connections=sum(t.new_connections for t in workers),
            conns_per_s=merge_counts(p for t in workers for p in t.conns_per_s),
            errors=env.stats.serialize_errors(),
            per_worker=D.per_worker(workers),
        )

    workers = D.Workers(
        "loadgen.locust.run", plan.to_json(), plan.workers, plan.worker_netns,
        plan.master_host, plan.master_port,
    )  # fmt: skip
    return D.run_master(
        env, workers, lambda runner: _drive(env, runner, plan), collect, exit_grace_s=10.0
    )


def run_worker(plan: LocustPlan, master_host: str, master_port: int, name: str) -> None:
    env = _environment(plan)
    runner = env.create_worker_runner(master_host, master_port)
    D.report_to_master(env, runner, name)
    runner.greenlet.join()


def _run(plan: LocustPlan) -> LocustStats:
    return run_master(plan) if plan.workers else run_single(plan)


def main(argv: list[str] | None = None) -> int:
    return D.main(
        argv,
        prog="loadgen.locust.run",
        doc=__doc__,
        parse=LocustPlan.from_json,
        run=_run,
        run_worker=run_worker,
    )


if __name__ == "__main__":
    sys.exit(main())
