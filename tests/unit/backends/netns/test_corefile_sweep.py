"""A Corefile pre-check killed with SIGKILL leaves its temporary directory; the next check
removes it, by the dead PID in its name, and leaves a live process's alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.backends.netns.k8s.corefilecheck import TMP_PREFIX, sweep_stale

pytestmark = pytest.mark.unit


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_dead_checks_directory_goes_and_a_live_ones_stays(tmp_path: Path) -> None:
    dead = tmp_path / f"{TMP_PREFIX}{dead_pid()}-abc123"
    (dead / "sub").mkdir(parents=True)
    (dead / "sub" / "Corefile").write_text(".:53 {}\n")
    live = tmp_path / f"{TMP_PREFIX}{os.getpid()}-def456"
    live.mkdir()
    unrelated = tmp_path / "conntrack-harness-other-1-x"
    unrelated.mkdir()
    assert sweep_stale(tmp_path) == [dead]
    assert not dead.exists()
    assert live.is_dir()
    assert unrelated.is_dir()
