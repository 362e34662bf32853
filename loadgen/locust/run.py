"""Run Locust headless, in library mode, in this process's network namespace.

    ip netns exec <pod-ns> python -m loadgen.locust.run --plan-json JSON|@FILE [--out FILE]

Prints (or writes to ``--out``) a :class:`loadgen.locust.stats.LocustStats` as JSON.
With ``workers: N`` in the plan this process is the master: it starts N worker processes
(``--role worker``), each in ``worker_netns[i]`` when given, and merges their stats.
Exit codes: 0 ran, 2 bad input, 3 the run failed.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]

# Locust monkey-patches the standard library with gevent on import: it must come first.
import locust
from locust.env import Environment
from locust.runners import STATE_STOPPED, Runner

from harness.errors import BackendError, BadInput, HarnessError
from harness.kernel.netns import exec_argv
from loadgen.locust.plan import LocustPlan
from loadgen.locust.shapes import shape_for
from loadgen.locust.stats import LocustStats, WorkerStats, from_locust, merge_counts
from loadgen.locust.users import CONNECTIONS, configure

POLL_S = 0.1
WORKER_CONNECT_TIMEOUT_S = 30.0
FINAL_REPORT_TIMEOUT_S = 8.0  # > 2 worker report intervals (3 s each)

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


@dataclass
class _WorkerTally:
    name: str
    requests: int = 0
    new_connections: int = 0
    last_report: float = 0.0
    idle: bool = False
    conns_per_s: list[list[int]] = field(default_factory=list)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        port: int = s.getsockname()[1]
        return port


def _spawn_workers(
    plan: LocustPlan, host: str, port: int, logdir: Path
) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(plan.workers):
        argv = [
            sys.executable, "-m", "loadgen.locust.run", "--role", "worker",
            "--plan-json", plan.to_json(), "--master-host", host,
            "--master-port", str(port), "--worker-name", f"worker-{i}",
        ]  # fmt: skip
        if plan.worker_netns:
            argv = exec_argv(plan.worker_netns[i], argv)
        with (logdir / f"worker-{i}.log").open("wb") as log:
            procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log))
    return procs


def _stop_procs(procs: list[subprocess.Popen[bytes]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


def _worker_logs(logdir: Path) -> str:
    return "\n".join(f"{f.name}: {f.read_text()[-800:]}" for f in sorted(logdir.glob("*.log")))


def run_master(plan: LocustPlan) -> LocustStats:
    env = _environment(plan)
    host = plan.master_host or "127.0.0.1"
    port = plan.master_port or _free_port()
    runner = env.create_master_runner(master_bind_host="*", master_bind_port=port)
    tallies: dict[str, _WorkerTally] = {}

    def on_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
        if "cth_worker" not in data:
            return
        t = tallies.setdefault(client_id, _WorkerTally(name=str(data["cth_worker"])))
        t.requests += int(data["cth_requests"])
        t.new_connections += int(data["cth_new_connections"])
        t.conns_per_s.extend(data["cth_conns_per_s"])
        t.idle = bool(data["cth_idle"])
        t.last_report = time.monotonic()

    env.events.worker_report.add_listener(on_report)  # type: ignore[no-untyped-call]
    with tempfile.TemporaryDirectory(prefix="cth-locust-") as tmp:
        logdir = Path(tmp)
        procs = _spawn_workers(plan, host, port, logdir)
        try:
            deadline = time.monotonic() + WORKER_CONNECT_TIMEOUT_S
            while len(runner.clients.ready) < plan.workers:
                dead = [p.args for p in procs if p.poll() is not None]
                if dead or time.monotonic() > deadline:
                    raise BackendError(
                        f"{len(runner.clients.ready)} of {plan.workers} Locust workers "
                        f"connected to {host}:{port}; logs:\n{_worker_logs(logdir)}"
                    )
                gevent.sleep(POLL_S)
            elapsed = _drive(env, runner, plan)
            stopped = time.monotonic()
            deadline = stopped + FINAL_REPORT_TIMEOUT_S
            # Every worker reports each 3 s; wait for one sent once its users had stopped.
            while time.monotonic() < deadline and not (
                len(tallies) >= plan.workers
                and all(t.idle and t.last_report > stopped for t in tallies.values())
            ):
                gevent.sleep(POLL_S)
            workers = sorted(tallies.values(), key=lambda t: t.name)
            stats = from_locust(
                env.stats.total.serialize(),
                user=plan.user,
                workers=plan.workers,
                elapsed_s=elapsed,
                new_connections=sum(t.new_connections for t in workers),
                conns_per_s=merge_counts(p for t in workers for p in t.conns_per_s),
                errors=env.stats.serialize_errors(),
                per_worker=[
                    WorkerStats(
                        worker=t.name, requests=t.requests, new_connections=t.new_connections
                    )
                    for t in workers
                ],
            )
            runner.quit()
            _stop_procs(procs, 10.0)
            return stats
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(timeout=5)


def run_worker(plan: LocustPlan, master_host: str, master_port: int, name: str) -> None:
    env = _environment(plan)
    runner = env.create_worker_runner(master_host, master_port)
    counts = {"requests": 0, "reported": 0}

    def on_request(**_: Any) -> None:
        counts["requests"] += 1

    def on_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
        delta, per_s = CONNECTIONS.take_delta()
        data["cth_worker"] = name
        data["cth_requests"] = counts["requests"] - counts["reported"]
        counts["reported"] = counts["requests"]
        data["cth_new_connections"] = delta
        data["cth_conns_per_s"] = per_s
        data["cth_idle"] = runner.user_count == 0

    env.events.request.add_listener(on_request)  # type: ignore[no-untyped-call]
    env.events.report_to_master.add_listener(on_report)  # type: ignore[no-untyped-call]
    runner.greenlet.join()


def _read_plan(text: str) -> LocustPlan:
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as e:
            raise BadInput(str(e), field="plan-json", value=text) from None
    return LocustPlan.from_json(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m loadgen.locust.run", description=__doc__)
    ap.add_argument("--plan-json", required=True, help="The plan as JSON, or @FILE")
    ap.add_argument("--out", help="Write the JSON result here. Default: stdout")
    ap.add_argument("--role", choices=["auto", "worker"], default="auto", help="Default: auto")
    ap.add_argument("--master-host", help="worker role: the master's address")
    ap.add_argument("--master-port", type=int, help="worker role: the master's port")
    ap.add_argument("--worker-name", default="worker", help="Default: worker")
    args = ap.parse_args(argv)
    try:
        plan = _read_plan(args.plan_json)
        if args.role == "worker":
            if not args.master_host or not args.master_port:
                raise BadInput(
                    "a worker needs the master's address", field="--master-host/--master-port"
                )
            run_worker(plan, args.master_host, args.master_port, args.worker_name)
            return 0
        stats = run_master(plan) if plan.workers else run_single(plan)
    except HarnessError as e:
        print(f"loadgen.locust.run: {e}", file=sys.stderr)
        return int(getattr(e, "exit_code", 3))
    text = json.dumps(stats, sort_keys=True)
    if args.out:
        Path(args.out).write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
