"""The race fault's CPU pinning reaches every thread of a server, not just its first one."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from harness.backends.netns.levers import Levers
from harness.kernel.process import threads

# a child with three threads started before it is pinned, as CoreDNS's Go runtime has
CHILD = (
    "import threading, time\n"
    "for _ in range(2): threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n"
    "print('up', flush=True); time.sleep(60)\n"
)


def allowed(tid: int) -> set[int]:
    return os.sched_getaffinity(tid)


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs two CPUs to tell pinned apart")
def test_pin_moves_every_thread_and_back() -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "up"
        deadline = time.monotonic() + 5
        while len(threads(child.pid)) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        tids = threads(child.pid)
        assert len(tids) >= 3, tids
        everywhere = allowed(child.pid)
        assert len(everywhere) >= 2
        Levers.pin([child.pid], {0})
        assert {t: allowed(t) for t in tids} == {t: {0} for t in tids}
        Levers.pin([child.pid], everywhere)
        assert {t: allowed(t) for t in tids} == dict.fromkeys(tids, everywhere)
    finally:
        child.kill()
        child.wait()


def test_threads_of_a_gone_process_is_the_pid() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert threads(child.pid) == [child.pid]
    Levers.pin([child.pid], {0})  # an exited server is not an error
