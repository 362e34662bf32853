"""Ctrl-C, SIGTERM and SIGHUP in the middle of a run: the host goes back to how it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.kernel.conftest import HostSnapshot

pytestmark = pytest.mark.kernel

SCENARIO = {
    "name": "interrupt-me",
    "host": {"nf_conntrack_max": 8192},
    "cluster": {"nodes": 2, "client_pods": 2},
    "load": {"duration_s": 60, "http": {"rate": 300}, "dns": {"rate": 20}},
    "phases": [{"name": "baseline"}],
}


def _wait_for(cond: object, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def _load_worker_running() -> bool:
    for p in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"loadgen.worker" in p.read_bytes():
                return True
        except OSError:  # the process exited between the listing and the read
            continue
    return False


def _stop_and_repair(proc: subprocess.Popen[str], env: dict[str, str]) -> None:
    """The test failed before its own signal: stop the run the way a user would, and if it
    will not stop, kill it and repair the host with `restore`, so one failure cannot leave
    a shrunken nf_conntrack_max behind for the tests after it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    subprocess.run(
        [sys.executable, "-m", "harness.cli", "restore", "--wait", "60"],
        env=env,
        capture_output=True,
        check=False,
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_signal_mid_run_restores_everything(
    tmp_path: Path, sig: signal.Signals, host_unchanged: HostSnapshot
) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(yaml.safe_dump(SCENARIO))
    env = {**os.environ, "CONNTRACK_HARNESS_STATE_DIR": str(tmp_path / "state")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(f), "--wait", "120"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        max_file = Path("/proc/sys/net/netfilter/nf_conntrack_max")
        # the load is running: the table was shrunk and a load worker exists
        assert _wait_for(
            lambda: max_file.read_text().strip() == "8192" and _load_worker_running(), 60
        ), "the run never reached its load phase"
        time.sleep(1.0)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    except BaseException:
        _stop_and_repair(proc, env)
        raise
    assert proc.returncode == 128 + sig, err
    assert "restored" in err
    assert not list((tmp_path / "state" / "runs").glob("*.jsonl"))
