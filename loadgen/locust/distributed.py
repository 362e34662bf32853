"""Locust's master/worker mode as both runners use it. Imports Locust: subprocess only.

The master (:mod:`loadgen.locust.run` or :mod:`loadgen.locust.userrun`) starts N worker
processes of its own module, each inside its client pod's namespace when given, waits for them
to connect, and after the run for a report each sent once its users had stopped. Every worker
adds to its reports what only it knows: requests and TCP connects since the last report
(:data:`loadgen.locust.users.CONNECTIONS`), and whether its users have stopped.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import gevent  # type: ignore[import-untyped]

# Locust monkey-patches the standard library with gevent on import: it must come first.
import locust
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from cthcommon.errors import BackendError, BadInput, HarnessError
from cthcommon.netns import exec_argv
from loadgen.locust.stats import WorkerStats
from loadgen.locust.users import CONNECTIONS

POLL_S = 0.1
WORKER_CONNECT_TIMEOUT_S = 30.0
FINAL_REPORT_TIMEOUT_S = 8.0  # > 2 worker report intervals (3 s each)

__all__ = ["locust"]


@dataclass
class WorkerTally:
    name: str
    requests: int = 0
    new_connections: int = 0
    last_report: float = 0.0
    idle: bool = False
    conns_per_s: list[list[int]] = field(default_factory=list)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        port: int = s.getsockname()[1]
        return port


def spawn_workers(
    module: str,
    plan_json: str,
    *,
    count: int,
    netns: Sequence[str],
    master: tuple[str, int],
    logdir: Path,
) -> list[subprocess.Popen[bytes]]:
    """``count`` workers of ``python -m module``, worker i inside ``netns[i]`` when given."""
    procs = []
    for i in range(count):
        argv = [
            sys.executable, "-m", module, "--role", "worker", "--plan-json", plan_json,
            "--master-host", master[0], "--master-port", str(master[1]),
            "--worker-name", f"worker-{i}",
        ]  # fmt: skip
        if netns:
            argv = exec_argv(netns[i], argv)
        with (logdir / f"worker-{i}.log").open("wb") as log:
            procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log))
    return procs


def stop_procs(procs: list[subprocess.Popen[bytes]], timeout_s: float) -> None:
    """Wait up to ``timeout_s`` for every process to exit; kill the ones still running."""
    deadline = time.monotonic() + timeout_s
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


def worker_logs(logdir: Path) -> str:
    return "\n".join(f"{f.name}: {f.read_text()[-800:]}" for f in sorted(logdir.glob("*.log")))


def collect_reports(env: Environment) -> dict[str, WorkerTally]:
    """Master side: the tallies the workers' reports add up to, by client id (live)."""
    tallies: dict[str, WorkerTally] = {}

    def on_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
        if "cth_worker" not in data:
            return
        t = tallies.setdefault(client_id, WorkerTally(name=str(data["cth_worker"])))
        t.requests += int(data["cth_requests"])
        t.new_connections += int(data["cth_new_connections"])
        t.conns_per_s.extend(data["cth_conns_per_s"])
        t.idle = bool(data["cth_idle"])
        t.last_report = time.monotonic()

    env.events.worker_report.add_listener(on_report)  # type: ignore[no-untyped-call]
    return tallies


def await_workers(
    runner: MasterRunner,
    procs: list[subprocess.Popen[bytes]],
    master: tuple[str, int],
    logdir: Path,
) -> None:
    deadline = time.monotonic() + WORKER_CONNECT_TIMEOUT_S
    while len(runner.clients.ready) < len(procs):
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            raise BackendError(
                f"{len(runner.clients.ready)} of {len(procs)} Locust workers connected to "
                f"{master[0]}:{master[1]}; logs:\n{worker_logs(logdir)}"
            )
        gevent.sleep(POLL_S)


def await_final_reports(
    tallies: dict[str, WorkerTally], count: int, stopped: float
) -> list[WorkerTally]:
    """Every worker reports each 3 s: wait for one sent once its users had stopped."""
    deadline = stopped + FINAL_REPORT_TIMEOUT_S
    while time.monotonic() < deadline and not (
        len(tallies) >= count and all(t.idle and t.last_report > stopped for t in tallies.values())
    ):
        gevent.sleep(POLL_S)
    return sorted(tallies.values(), key=lambda t: t.name)


def per_worker(tallies: list[WorkerTally]) -> list[WorkerStats]:
    return [
        WorkerStats(worker=t.name, requests=t.requests, new_connections=t.new_connections)
        for t in tallies
    ]


def report_to_master(env: Environment, runner: WorkerRunner, name: str) -> None:
    """Worker side: add this worker's requests, connects and idleness to each report."""
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


P = TypeVar("P")
T = TypeVar("T")


@dataclass(frozen=True)
class Workers:
    """Where a master's workers run: ``count`` processes of ``python -m module``, worker i
    inside ``netns[i]`` (when given), reaching the master at ``host``:``port`` (0: any)."""

    module: str
    plan_json: str
    count: int
    netns: Sequence[str]
    host: str | None
    port: int


def run_master(
    env: Environment,
    workers: Workers,
    drive: Callable[[MasterRunner], float],
    collect: Callable[[float, list[WorkerTally]], T],
    *,
    exit_grace_s: float,
) -> T:
    """Start the master and its workers, ``drive`` the run (it returns the seconds it took),
    wait for the workers' final reports, ``collect`` the stats; stop every worker, always."""
    master = (workers.host or "127.0.0.1", workers.port or free_port())
    runner = env.create_master_runner(master_bind_host="*", master_bind_port=master[1])
    tallies = collect_reports(env)
    with tempfile.TemporaryDirectory(prefix="cth-locust-") as tmp:
        logdir = Path(tmp)
        procs = spawn_workers(
            workers.module,
            workers.plan_json,
            count=workers.count,
            netns=workers.netns,
            master=master,
            logdir=logdir,
        )
        try:
            await_workers(runner, procs, master, logdir)
            elapsed = drive(runner)
            stats = collect(elapsed, await_final_reports(tallies, workers.count, time.monotonic()))
            runner.quit()
            stop_procs(procs, exit_grace_s)
            return stats
        finally:
            stop_procs(procs, 0.0)


def read_plan_text(text: str) -> str:
    """``--plan-json``: the JSON itself, or ``@FILE``."""
    if text.startswith("@"):
        try:
            return Path(text[1:]).read_text()
        except OSError as e:
            raise BadInput(str(e), field="plan-json", value=text) from None
    return text


def main(
    argv: list[str] | None,
    *,
    prog: str,
    doc: str | None,
    parse: Callable[[str], P],
    run: Callable[[P], object],
    run_worker: Callable[[P, str, int, str], None],
) -> int:
    """The command line both runners share: run ``run(plan)`` (the master, or one process)
    and print its JSON, or be worker ``--worker-name`` of the master at ``--master-host``."""
    ap = argparse.ArgumentParser(prog=f"python -m {prog}", description=doc)
    ap.add_argument("--plan-json", required=True, help="The plan as JSON, or @FILE")
    ap.add_argument("--out", help="Write the JSON result here. Default: stdout")
    ap.add_argument("--role", choices=["auto", "worker"], default="auto", help="Default: auto")
    ap.add_argument("--master-host", help="worker role: the master's address")
    ap.add_argument("--master-port", type=int, help="worker role: the master's port")
    ap.add_argument("--worker-name", default="worker", help="Default: worker")
    args = ap.parse_args(argv)
    try:
        plan = parse(read_plan_text(args.plan_json))
        if args.role == "worker":
            if not args.master_host or not args.master_port:
                raise BadInput(
                    "a worker needs the master's address", field="--master-host/--master-port"
                )
            run_worker(plan, args.master_host, args.master_port, args.worker_name)
            return 0
        stats = run(plan)
    except HarnessError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return int(getattr(e, "exit_code", 3))
    text = json.dumps(stats, sort_keys=True)
    if args.out:
        Path(args.out).write_text(text + "\n")
    else:
        print(text)
    return 0
