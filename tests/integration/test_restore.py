"""A run killed with SIGKILL leaves its journal; `conntrack-harness restore` undoes it all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from harness.kernel.journal import Journal

pytestmark = pytest.mark.kernel

VICTIM = textwrap.dedent("""
    import sys, time
    from harness.backends.netns.plan import plan_topology
    from harness.backends.netns.topology import Topology
    from harness.kernel.journal import HostLock, Journal
    from harness.kernel.sysctl import SysctlGuard
    from harness.scenario.model import ClusterSpec
    lock = HostLock(wait_s=60); lock.acquire()
    j = Journal.create(sys.argv[1])
    guard = SysctlGuard(j)
    guard.set("net.netfilter.nf_conntrack_max", 200000)
    topo = Topology(plan_topology(ClusterSpec(nodes=2, client_pods=2), sys.argv[1]), j)
    topo.__enter__()
    guard.set("net.netfilter.nf_conntrack_tcp_timeout_time_wait", 30, topo.plan.nodes[0].ns)
    print("ready", flush=True)
    time.sleep(600)
""")


def test_sigkill_then_restore_returns_host_to_recorded_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host_unchanged: object
) -> None:
    state = tmp_path / "state"
    env = {**os.environ, "CONNTRACK_HARNESS_STATE_DIR": str(state)}
    run_id = os.urandom(3).hex()
    victim = subprocess.Popen(
        [sys.executable, "-c", VICTIM, run_id], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert victim.stdout is not None
        assert victim.stdout.readline().strip() == "ready"
        assert Path("/proc/sys/net/netfilter/nf_conntrack_max").read_text().strip() == "200000"
        j = Journal.load(state / "runs" / f"{run_id}.jsonl")
        procs = [e for e in j.entries if e["op"] == "process"]
        assert len(procs) >= 4  # upstream, 2 CoreDNS, nginx
        assert any(Path(f"/run/netns/cth-{run_id}-node-1").exists() for _ in [0])
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    # the killed run left everything behind ...
    assert Path(f"/run/netns/cth-{run_id}-vpc").exists()
    assert all(Path(f"/proc/{e['pid']}").exists() for e in procs)
    # ... and restore undoes it, reporting what it did
    out = subprocess.run(
        [sys.executable, "-m", "harness.cli", "restore"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "restored net.netfilter.nf_conntrack_max = " in out.stdout
    assert f"deleted namespace cth-{run_id}-vpc" in out.stdout
    assert not list(state.glob("runs/*.jsonl"))
    for e in procs:
        assert (
            not Path(f"/proc/{e['pid']}").exists()
            or Path(f"/proc/{e['pid']}/stat").read_text().split()[2] == "Z"
        )
    # a second restore finds nothing: restores are idempotent
    again = subprocess.run(
        [sys.executable, "-m", "harness.cli", "restore"], env=env, capture_output=True, text=True
    )
    assert again.returncode == 0
    assert "nothing to restore" in again.stdout


def test_second_run_is_refused_while_the_lock_is_held(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "CONNTRACK_HARNESS_STATE_DIR": str(tmp_path),
        "CONNTRACK_HARNESS_LOCK": str(tmp_path / "lock"),
    }
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from harness.kernel.journal import HostLock; import time\n"
            "l = HostLock(); l.acquire(); print('held', flush=True); time.sleep(60)",
        ],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        out = subprocess.run(
            [sys.executable, "-m", "harness.cli", "restore"],
            env=env,
            capture_output=True,
            text=True,
        )
        assert out.returncode == 2
        assert f"pid {holder.pid}" in out.stderr
    finally:
        holder.kill()
        holder.wait()
    # the holder died: its flock is gone with it, no stale lock to clean by hand
    out = subprocess.run(
        [sys.executable, "-m", "harness.cli", "restore"], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
