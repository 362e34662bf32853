"""Stopping processes together: one grace period for all, SIGKILL for those that ignore
SIGTERM, and nothing sent to a PID that is no longer the process we started (no root)."""

from __future__ import annotations

import subprocess
import sys
import time

from harness.kernel.journal import is_same_process, process_start_time
from harness.kernel.process import stop_pids

IGNORES_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"


def _spawn(code: str) -> tuple[subprocess.Popen[bytes], int | None]:
    p = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(0.3)  # let it install its handler
    return p, process_start_time(p.pid)


def test_every_process_is_signalled_and_stubborn_ones_are_killed_after_the_grace() -> None:
    procs = [_spawn(IGNORES_TERM) for _ in range(3)]
    signalled = stop_pids([(p.pid, start) for p, start in procs], grace_s=0.5)
    assert sorted(signalled) == sorted(p.pid for p, _ in procs)
    for p, start in procs:  # SIGTERM ignored: killed after the grace period, and reaped
        assert not is_same_process(p.pid, start)


def test_a_polite_process_exits_on_sigterm() -> None:
    p, start = _spawn("import time; time.sleep(60)")
    assert stop_pids([(p.pid, start)], grace_s=5.0) == [p.pid]
    assert not is_same_process(p.pid, start)


def test_a_pid_that_is_another_process_now_is_left_alone() -> None:
    p, start = _spawn("import time; time.sleep(60)")
    assert start is not None
    try:
        assert stop_pids([(p.pid, start + 1)], grace_s=0.1) == []  # a different start time
        assert p.poll() is None
    finally:
        p.kill()
        p.wait()
