"""A run killed with SIGKILL leaves its journal; `conntrack-harness restore` undoes it all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from harness.kernel.journal import Journal

pytestmark = pytest.mark.kernel

VICTIM = textwrap.dedent("""
    import sys, time
    from harness.backends.netns.topologyplan import plan_topology
    from harness.backends.netns.topology import Topology
    from harness.kernel.journal import HostLock, Journal
    from harness.kernel.sysctl import SysctlGuard
    from harness.plan.phase import plan_cluster
    from harness.scenario.model import ClusterSpec
    lock = HostLock(wait_s=60); lock.acquire()
    j = Journal.create(sys.argv[1])
    guard = SysctlGuard(j)
    guard.set("net.netfilter.nf_conntrack_max", 200000)
    topo = Topology(
        plan_topology(plan_cluster(ClusterSpec(nodes=2, client_pods=2)), sys.argv[1]), j
    )
    topo.__enter__()
    guard.set("net.netfilter.nf_conntrack_tcp_timeout_time_wait", 30, topo.plan.nodes[0].ns)
    print("ready", flush=True)
    time.sleep(600)
""")


TINY_RUN = {
    "name": "after-a-kill",
    "cluster": {"nodes": 2, "client_pods": 1},
    "load": {"duration_s": 1, "http": None, "dns": {"rate": 20}},
    "phases": [{"name": "baseline"}],
}


@pytest.mark.parametrize("restore_by", ["restore", "restore-other-state-dir", "next-run"])
def test_sigkill_then_restore_returns_host_to_recorded_state(
    tmp_path: Path, host_unchanged: object, restore_by: str
) -> None:
    """A run killed with SIGKILL, then repaired by `restore` from its own state dir, by a
    plain `restore` from another one (the host-global registry leads it to the journal), or
    by the next run, which repairs before it starts and says so."""
    state = tmp_path / "state"
    env = {**os.environ, "CONNTRACK_HARNESS_STATE_DIR": str(state)}
    restore_env = (
        env
        if restore_by == "restore"
        else {**os.environ, "CONNTRACK_HARNESS_STATE_DIR": str(tmp_path / "elsewhere")}
    )
    if restore_by == "next-run":
        tiny = tmp_path / "tiny.yaml"
        tiny.write_text(yaml.safe_dump(TINY_RUN))
        repair = ["run", str(tiny), "--report-dir", str(tmp_path / "reports")]
    else:
        repair = ["restore"]
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
        assert Path(f"/run/netns/cth-{run_id}-node-1").exists()
    finally:
        victim.send_signal(signal.SIGKILL)
        victim.wait()
    # the killed run left everything behind ...
    assert Path(f"/run/netns/cth-{run_id}-vpc").exists()
    assert all(Path(f"/proc/{e['pid']}").exists() for e in procs)
    # ... and restore undoes it, reporting what it did
    out = subprocess.run(
        [sys.executable, "-m", "harness.cli", *repair],
        env=restore_env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    said = out.stderr if restore_by == "next-run" else out.stdout
    if restore_by == "next-run":
        assert "repaired what a killed run left before starting" in said
    assert "restored net.netfilter.nf_conntrack_max = " in said
    assert f"deleted namespace cth-{run_id}-vpc" in said
    assert not list(state.glob("runs/*.jsonl"))
    for e in procs:
        assert (
            not Path(f"/proc/{e['pid']}").exists()
            or Path(f"/proc/{e['pid']}/stat").read_text().split()[2] == "Z"
        )
    # a second restore finds nothing: restores are idempotent
    assert not (state / run_id).exists()  # the dead run's work directory
    again = subprocess.run(
        [sys.executable, "-m", "harness.cli", "restore"],
        env=restore_env,
        capture_output=True,
        text=True,
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
        [sys.executable, "-m", "harness.cli", "restore"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr


def test_orphans_no_journal_accounts_for_are_named_then_deleted_on_request(
    tmp_path: Path, host_unchanged: object
) -> None:
    """A run whose journal was lost (its state dir deleted, or killed before the registry
    existed): plain `restore` names its namespace and leaves it; `--orphans` deletes it and
    stops the process inside; `--conntrack-max` puts back a table size nobody journaled."""
    run_id = os.urandom(3).hex()
    ns = f"cth-{run_id}-node-1"
    max_file = Path("/proc/sys/net/netfilter/nf_conntrack_max")
    buckets_file = Path("/proc/sys/net/netfilter/nf_conntrack_buckets")
    original = max_file.read_text().strip()
    original_buckets = buckets_file.read_text().strip()
    env = {**os.environ, "CONNTRACK_HARNESS_STATE_DIR": str(tmp_path / "state")}
    subprocess.run(["ip", "netns", "add", ns], check=True)
    inside = subprocess.Popen(["ip", "netns", "exec", ns, "sleep", "600"])
    try:
        max_file.write_text("200000")
        buckets_file.write_text("4096")  # a run shrinks the buckets with the max

        def restore(*flags: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "harness.cli", "restore", *flags],
                env=env,
                capture_output=True,
                text=True,
            )

        doctor = subprocess.run(
            [sys.executable, "-m", "harness.cli", "doctor"], env=env, capture_output=True, text=True
        )
        assert doctor.returncode == 2
        assert "cth- namespace(s) no journal accounts for" in doctor.stdout
        assert "nf_conntrack_max = 200000 (nf_conntrack_buckets 4096)" in doctor.stdout
        assert "below the kernel's boot default" in doctor.stdout
        named = restore()
        assert named.returncode == 0, named.stderr
        assert run_id in named.stdout
        assert "--orphans" in named.stdout
        assert Path(f"/run/netns/{ns}").exists()
        deleted = restore("--orphans", "--conntrack-max", original)
        assert deleted.returncode == 0, deleted.stderr
        assert f"deleted orphan namespace {ns}" in deleted.stdout
        assert f"stopped pid {inside.pid} left in {ns}" in deleted.stdout
        assert f"set net.netfilter.nf_conntrack_max = {original} (was 200000" in deleted.stdout
        assert not Path(f"/run/netns/{ns}").exists()
        assert max_file.read_text().strip() == original
        want = min(int(original), int(original_buckets))
        assert f"set net.netfilter.nf_conntrack_buckets = {want} (was 4096" in deleted.stdout
        assert buckets_file.read_text().strip() == str(want)
        assert inside.wait(timeout=10) != 0  # stopped by the harness, not finished
    finally:
        if inside.poll() is None:
            inside.kill()
            inside.wait()
        if Path(f"/run/netns/{ns}").exists():
            subprocess.run(["ip", "netns", "del", ns], check=False)
        max_file.write_text(original)
        buckets_file.write_text(original_buckets)
