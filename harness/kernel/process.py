"""Processes the harness starts: journaled by PID (+ start time) and stopped by that PID only."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cthcommon.errors import BackendError
from cthcommon.netns import exec_argv
from cthcommon.signals import deferred
from harness.kernel.journal import Journal, is_same_process, process_start_time


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    start: int | None
    log: Path | None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, n: int = 2000) -> str:
        if self.log is None or not self.log.exists():
            return ""
        return self.log.read_bytes()[-n:].decode(errors="replace")


def spawn(
    journal: Journal,
    name: str,
    argv: Sequence[str],
    *,
    netns: str | None = None,
    log: Path | None = None,
) -> Proc:
    full = exec_argv(netns, argv) if netns else list(argv)
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115
    # a signal between Popen and the journal line would leave a process nobody knows about
    with deferred():
        try:
            popen = subprocess.Popen(
                full,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except FileNotFoundError as e:
            raise BackendError(f"cannot start {name}: {e}") from e
        finally:
            if log:
                out.close()  # type: ignore[union-attr]
        start = process_start_time(popen.pid)
        journal.record("process", pid=popen.pid, start=start, name=name, argv=full)
    return Proc(name, popen, start, log)


def stop_pid(pid: int, start: int | None, grace_s: float = 2.0) -> bool:
    """SIGTERM then SIGKILL one process, only if it is still the one we started."""
    return bool(stop_pids([(pid, start)], grace_s))


def _gone(pid: int, start: int | None) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child: it is gone when its start time changed
        return not is_same_process(pid, start)
    return done == pid or not is_same_process(pid, start)


def stop_pids(procs: Sequence[tuple[int, int | None]], grace_s: float = 2.0) -> list[int]:
    """SIGTERM every process that is still the one we started, give them ``grace_s``
    together, then SIGKILL those left. Returns the PIDs it signalled. Stopping them together
    takes one grace period, not one per process (CoreDNS's lameduck alone waits 5 s)."""
    live: list[tuple[int, int | None]] = []
    for pid, start in procs:
        if not is_same_process(pid, start):
            continue
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        live.append((pid, start))
    signalled = [pid for pid, _ in live]
    deadline = time.monotonic() + grace_s
    while live and time.monotonic() < deadline:
        live = [(pid, start) for pid, start in live if not _gone(pid, start)]
        if live:
            time.sleep(0.02)
    for pid, start in live:
        if is_same_process(pid, start):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    return signalled


def stop(proc: Proc, grace_s: float = 2.0) -> None:
    if proc.popen.poll() is None:
        proc.popen.terminate()
        try:
            proc.popen.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait()


def threads(pid: int) -> list[int]:
    """The thread ids of ``pid`` (``/proc/PID/task``); just ``pid`` if it cannot be listed."""
    try:
        return sorted(int(t) for t in os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return [pid]


def pin_threads(pids: Sequence[int], cpus: set[int]) -> None:
    """Every thread of each process on ``cpus``: sched_setaffinity(pid) moves only the thread
    whose id is pid, and CoreDNS (Go) answers from threads it started long before, which would
    keep answering from every CPU (the A answer then overtakes the AAAA)."""
    for pid in pids:
        for tid in threads(pid):
            try:
                os.sched_setaffinity(tid, cpus)
            except OSError:  # the thread (or process) has exited
                continue


def descendants(root: int) -> dict[int, str]:
    """Processes below ``root`` (any depth), by PID, with their ``comm``: a container's
    processes, seen from the host, by the container's init PID."""
    parent: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        pid = int(entry)
        names[pid] = stat[stat.index("(") + 1 : stat.rindex(")")]
        parent[pid] = int(stat[stat.rindex(")") + 2 :].split()[1])
    out: dict[int, str] = {}
    for pid, name in names.items():
        p = pid
        while p > 1 and p != root:
            p = parent.get(p, 0)
        if p == root and pid != root:
            out[pid] = name
    return dict(sorted(out.items()))


def descendants_named(root: int, comm: str) -> list[int]:
    """Processes below ``root`` (any depth) whose ``comm`` is ``comm``."""
    return [pid for pid, name in descendants(root).items() if name == comm]
