"""descendants_named: a container's processes by name, from the host, below its init PID."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time

from harness.kernel.process import descendants_named


def test_finds_grandchildren_by_name_and_nothing_outside_the_tree() -> None:
    # sh -> sh -> sleep: the sleep is two levels below the outer shell
    outer = subprocess.Popen(["sh", "-c", "sh -c 'sleep 30' & wait"])
    other = subprocess.Popen(["sleep", "30"])  # a sleep that is not below it
    try:
        deadline = time.monotonic() + 5
        found: list[int] = []
        while time.monotonic() < deadline and not found:
            found = descendants_named(outer.pid, "sleep")
            time.sleep(0.05)
        assert len(found) == 1
        assert found[0] != other.pid
        assert other.pid in descendants_named(os.getpid(), "sleep")
        assert descendants_named(outer.pid, "no-such-name") == []
    finally:
        for p in (outer, other):
            p.kill()
            p.wait()
        for pid in found:  # the grandchild, by its PID
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
