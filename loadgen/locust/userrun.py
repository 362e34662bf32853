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

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gevent  # type: ignore[import-untyped]

# Locust monkey-patches the standard library with gevent on import: it must come first.
import locust
from gevent._socket3 import socket as gevent_socket  # type: ignore[import-untyped]
from locust import User
from locust.env import Environment
from locust.runners import Runner
from locust.util.load_locustfile import load_locustfile

from harness.errors import BackendError, BadInput, HarnessError
from harness.kernel.netns import exec_argv
from loadgen.locust.endpoints import LocustfileStats, locustfile_stats
from loadgen.locust.run import (
    FINAL_REPORT_TIMEOUT_S,
    POLL_S,
    WORKER_CONNECT_TIMEOUT_S,
    _free_port,
    _stop_procs,
    _worker_logs,
)
from loadgen.locust.stats import WorkerStats
from loadgen.locust.userplan import LocustfilePlan

__all__ = ["locust", "main"]

WORKER_EXIT_GRACE_S = 2.0
# On stop, a user's request in flight may finish (and be counted) for this long; one stuck
# longer (a client without timeouts, connecting into a full table) is cut off uncounted.
STOP_TIMEOUT_S = 5.0


class _Connects:
    """TCP connects made in this process (total, and since the last worker report)."""

    total = 0
    reported = 0


def _count_connects() -> None:
    original = gevent_socket.connect

    def connect(self: Any, address: Any) -> Any:
        _Connects.total += 1
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
        gevent.sleep(POLL_S)
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
        return _stats(env, plan, elapsed, _Connects.total)
    finally:
        runner.quit()


def _spawn_workers(
    plan: LocustfilePlan, host: str, port: int, logdir: Path
) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(plan.workers):
        argv = [
            sys.executable, "-m", "loadgen.locust.userrun", "--role", "worker",
            "--plan-json", plan.to_json(), "--master-host", host,
            "--master-port", str(port), "--worker-name", f"worker-{i}",
        ]  # fmt: skip
        if plan.worker_netns:
            argv = exec_argv(plan.worker_netns[i], argv)
        with (logdir / f"worker-{i}.log").open("wb") as log:
            procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log))
    return procs


def run_master(plan: LocustfilePlan) -> LocustfileStats:
    env = _environment(plan)
    host = plan.master_host or "127.0.0.1"
    port = plan.master_port or _free_port()
    runner = env.create_master_runner(master_bind_host="*", master_bind_port=port)
    tallies: dict[str, dict[str, Any]] = {}

    def on_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
        if "cth_worker" not in data:
            return
        t = tallies.setdefault(client_id, {"name": data["cth_worker"], "requests": 0, "conns": 0})
        t["requests"] += int(data["cth_requests"])
        t["conns"] += int(data["cth_new_connections"])
        t["idle"] = bool(data["cth_idle"])
        t["last"] = time.monotonic()

    env.events.worker_report.add_listener(on_report)  # type: ignore[no-untyped-call]
    with tempfile.TemporaryDirectory(prefix="cth-locustfile-") as tmp:
        logdir = Path(tmp)
        procs = _spawn_workers(plan, host, port, logdir)
        try:
            deadline = time.monotonic() + WORKER_CONNECT_TIMEOUT_S
            while len(runner.clients.ready) < plan.workers:
                if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                    raise BackendError(
                        f"{len(runner.clients.ready)} of {plan.workers} Locust workers "
                        f"connected to {host}:{port}; logs:\n{_worker_logs(logdir)}"
                    )
                gevent.sleep(POLL_S)
            elapsed = _drive(runner, plan)
            stopped = time.monotonic()
            deadline = stopped + FINAL_REPORT_TIMEOUT_S
            # every worker reports each 3 s: wait for one sent after its users stopped
            while time.monotonic() < deadline and not (
                len(tallies) >= plan.workers
                and all(t.get("idle") and t["last"] > stopped for t in tallies.values())
            ):
                gevent.sleep(POLL_S)
            workers = sorted(tallies.values(), key=lambda t: str(t["name"]))
            stats = _stats(
                env,
                plan,
                elapsed,
                sum(int(t["conns"]) for t in workers),
                [
                    WorkerStats(
                        worker=str(t["name"]),
                        requests=int(t["requests"]),
                        new_connections=int(t["conns"]),
                    )
                    for t in workers
                ],
            )
            runner.quit()
            # the workers' final stats are in; one that lingers after "quit" is stopped
            _stop_procs(procs, WORKER_EXIT_GRACE_S)
            return stats
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait(timeout=5)


def run_worker(plan: LocustfilePlan, master_host: str, master_port: int, name: str) -> None:
    env = _environment(plan)
    runner = env.create_worker_runner(master_host, master_port)
    counts = {"requests": 0, "reported": 0}

    def on_request(**_: Any) -> None:
        counts["requests"] += 1

    def on_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
        data["cth_worker"] = name
        data["cth_requests"] = counts["requests"] - counts["reported"]
        counts["reported"] = counts["requests"]
        data["cth_new_connections"] = _Connects.total - _Connects.reported
        _Connects.reported = _Connects.total
        data["cth_idle"] = runner.user_count == 0

    env.events.request.add_listener(on_request)  # type: ignore[no-untyped-call]
    env.events.report_to_master.add_listener(on_report)  # type: ignore[no-untyped-call]
    runner.greenlet.join()


def _read_plan(text: str) -> LocustfilePlan:
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as e:
            raise BadInput(str(e), field="plan-json", value=text) from None
    return LocustfilePlan.from_json(text)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m loadgen.locust.userrun", description=__doc__)
    ap.add_argument("--plan-json", required=True, help="The plan as JSON, or @FILE")
    ap.add_argument("--out", help="Write the JSON result here. Default: stdout")
    ap.add_argument("--role", choices=["auto", "worker"], default="auto", help="Default: auto")
    ap.add_argument("--master-host", help="worker role: the master's address")
    ap.add_argument("--master-port", type=int, help="worker role: the master's port")
    ap.add_argument("--worker-name", default="worker", help="Default: worker")
    args = ap.parse_args(argv)
    _count_connects()
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
        print(f"loadgen.locust.userrun: {e}", file=sys.stderr)
        return int(getattr(e, "exit_code", 3))
    text = json.dumps(stats, sort_keys=True)
    if args.out:
        Path(args.out).write_text(text + "\n")
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
