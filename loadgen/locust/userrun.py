"""Run a user's locustfile headless against the cluster, in this network namespace.

    ip netns exec <pod-ns> python -m loadgen.locust.userrun --plan-json JSON|@FILE [--out FILE]

Prints (or writes to ``--out``) a :class:`loadgen.locust.endpoints.LocustfileStats` as JSON.
With ``workers: N`` this process is the master: it starts N worker processes
(``--role worker``), worker i inside ``worker_netns[i]`` when given, and Locust merges their
stats. Every TCP connect the users' HTTP clients make is counted (gevent's socket, which
requests/urllib3 and geventhttpclient both use after Locust's monkey-patching), so "new
connections" is measured, whatever the locustfile's users do. A shape class in the file is
not used: the scenario's ``users`` and ``duration_s`` drive the run.
Exit codes: 0 ran, 2 bad input (the plan, or the locustfile and its user classes), 3 failed.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import gevent  # type: ignore[import-untyped]

# Locust monkey-patches the standard library with gevent on import: it must come first.
import locust
from gevent._socket3 import socket as gevent_socket  # type: ignore[import-untyped]
from locust import User
from locust.env import Environment
from locust.runners import Runner
from locust.util.load_locustfile import load_locustfile

from cthcommon.errors import BadInput
from loadgen.locust import distributed as D
from loadgen.locust.endpoints import LocustfileStats, locustfile_stats
from loadgen.locust.stats import WorkerStats
from loadgen.locust.userplan import LocustfilePlan
from loadgen.locust.users import CONNECTIONS

__all__ = ["locust", "main"]

WORKER_EXIT_GRACE_S = 2.0
# On stop, a user's request in flight may finish (and be counted) for this long; one stuck
# longer (a client without timeouts, connecting into a full table) is cut off uncounted.
STOP_TIMEOUT_S = 5.0


def _count_connects() -> None:
    original = gevent_socket.connect

    def connect(self: Any, address: Any) -> Any:
        CONNECTIONS.opened()
        return original(self, address)

    gevent_socket.connect = connect


def user_classes(plan: LocustfilePlan) -> list[type[User]]:
    """The file's User classes (those named in the plan, or all), aimed at the plan's host."""
    try:
        found, _shapes = load_locustfile(plan.locustfile)
    except Exception as e:  # the user's file: any import error is bad input
        raise BadInput(
            f"cannot import: {type(e).__name__}: {e}", field="locustfile", value=plan.locustfile
        ) from None
    if not found:
        raise BadInput("defines no (non-abstract) User class", field="locustfile",
                       value=plan.locustfile)  # fmt: skip
    names = list(plan.user_classes) or sorted(found)
    missing = [n for n in names if n not in found]
    if missing:
        raise BadInput(
            "no such User class in the locustfile",
            field="user_classes",
            value=missing,
            allowed=sorted(found),
        )
    classes = [found[n] for n in names]
    for cls in classes:
        cls.host = plan.base_url  # what Locust's --host does
    return classes


def _environment(plan: LocustfilePlan) -> Environment:
    return Environment(
        user_classes=user_classes(plan), host=plan.base_url, stop_timeout=STOP_TIMEOUT_S
    )


def _drive(runner: Runner, plan: LocustfilePlan) -> float:
    t0 = time.monotonic()
    runner.start(plan.users, plan.spawn_rate)
    deadline = t0 + plan.duration_s
    while time.monotonic() < deadline:
        gevent.sleep(D.POLL_S)
    runner.stop()
    return time.monotonic() - t0


def _stats(
    env: Environment, plan: LocustfilePlan, elapsed: float, conns: int,
    per_worker: list[WorkerStats] | None = None,
) -> LocustfileStats:  # fmt: skip
    return locustfile_stats(
        locustfile=plan.locustfile,
        user_classes=[c.__name__ for c in env.user_classes],
        users=plan.users,
        workers=plan.workers,
        total=env.stats.total.serialize(),
        entries=[e.serialize() for e in env.stats.entries.values()],
        serialized_errors=env.stats.serialize_errors(),
        elapsed_s=elapsed,
        new_connections=conns,
        per_worker=per_worker,
    )


def run_single(plan: LocustfilePlan) -> LocustfileStats:
    env = _environment(plan)
    runner = env.create_local_runner()
    try:
        elapsed = _drive(runner, plan)
        return _stats(env, plan, elapsed, CONNECTIONS.total)
    finally:
        runner.quit()


def run_master(plan: LocustfilePlan) -> LocustfileStats:
    env = _environment(plan)

    def collect(elapsed: float, workers: list[D.WorkerTally]) -> LocustfileStats:
        conns = sum(t.new_connections for t in workers)
        return _stats(env, plan, elapsed, conns, D.per_worker(workers))

    workers = D.Workers(
        "loadgen.locust.userrun", plan.to_json(), plan.workers, plan.worker_netns,
        plan.master_host, plan.master_port,
    )  # fmt: skip
    # the workers' final stats are in by then: one that lingers after "quit" is stopped
    return D.run_master(
        env, workers, lambda runner: _drive(runner, plan), collect,
        exit_grace_s=WORKER_EXIT_GRACE_S,
    )  # fmt: skip


def run_worker(plan: LocustfilePlan, master_host: str, master_port: int, name: str) -> None:
    env = _environment(plan)
    runner = env.create_worker_runner(master_host, master_port)
    D.report_to_master(env, runner, name)
    runner.greenlet.join()


def _run(plan: LocustfilePlan) -> LocustfileStats:
    return run_master(plan) if plan.workers else run_single(plan)


def main(argv: list[str] | None = None) -> int:
    _count_connects()
    return D.main(
        argv,
        prog="loadgen.locust.userrun",
        doc=__doc__,
        parse=LocustfilePlan.from_json,
        run=_run,
        run_worker=run_worker,
    )


if __name__ == "__main__":
    sys.exit(main())
