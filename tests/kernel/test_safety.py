"""Refusals and the lock: what the harness will not do, and how it says so."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.doctor import TOOLS
from tests.kernel.hostcheck import FakeSysctls, Snapshot, cli_argv, new_run_id

pytestmark = pytest.mark.kernel

HOLD = (
    "import sys, time\nfrom harness.kernel.journal import HostLock\n"
    "l = HostLock(); l.acquire(); print('held', flush=True); time.sleep(float(sys.argv[1]))\n"
    "l.release()\n"
)


def _env(state: Path) -> dict[str, str]:
    # the lock stays host-global (it guards nf_conntrack_max): runs here contend with others
    return {**os.environ, "CONNTRACK_HARNESS_STATE_DIR": str(state)}


def _holder(state: Path, hold_s: float) -> subprocess.Popen[str]:
    p = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(hold_s)],
        env=_env(state),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert p.stdout is not None
    assert p.stdout.readline().strip() == "held"
    return p


def test_second_run_refused_naming_the_holder_after_waiting(tmp_path: Path) -> None:
    fake = FakeSysctls.create(tmp_path / "fake")
    f = tmp_path / "s.yaml"
    f.write_text(
        yaml.safe_dump(
            {"name": "x", "host": {"nf_conntrack_max": 16384}, "phases": [{"name": "a"}]}
        )
    )
    holder = _holder(tmp_path / "state", 60)
    try:
        t0 = time.monotonic()
        out = subprocess.run(
            fake.argv(cli_argv(new_run_id(), "run", str(f), "--wait", "1.5")),
            env=fake.env(tmp_path / "state", "x"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        waited = time.monotonic() - t0
    finally:
        holder.kill()
        holder.wait()
    assert out.returncode == 2, out.stderr
    assert f"pid {holder.pid}" in out.stderr
    assert "--wait" in out.stderr
    assert waited >= 1.5
    assert (
        fake.values()["nf_conntrack_max"]
        == (tmp_path / "fake" / "nf_conntrack_max").read_text().strip()
    )


def test_waiting_run_proceeds_when_the_holder_finishes(tmp_path: Path) -> None:
    holder = _holder(tmp_path / "state", 1.0)
    t0 = time.monotonic()
    out = subprocess.run(
        cli_argv(None, "restore", "--wait", "20"),
        env=_env(tmp_path / "state"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    holder.wait()
    assert out.returncode == 0, out.stderr
    assert time.monotonic() - t0 >= 0.8  # it did wait for the holder


def test_stale_lock_of_a_dead_pid_is_recovered(tmp_path: Path) -> None:
    state = tmp_path / "state"
    dead = subprocess.Popen(["true"])
    dead.wait()
    state.mkdir()
    (state / "lock").write_text(f"pid {dead.pid}\n")  # what a SIGKILLed holder leaves
    env = {**_env(state), "CONNTRACK_HARNESS_LOCK": str(state / "lock")}
    out = subprocess.run(
        cli_argv(None, "restore"), env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert (state / "lock").read_text() == ""


def test_failed_restore_is_loud_and_keeps_the_journal(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "runs").mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    j = state / "runs" / "zq0bad.jsonl"
    j.write_text(
        json.dumps({"op": "run", "pid": dead.pid, "pid_start": 1})
        + "\n"
        + json.dumps(
            {"op": "sysctl", "key": "net.netfilter.cth_no_such_key", "netns": None, "original": "1"}
        )
        + "\n"
    )
    for _ in range(2):  # and again: the failure does not go away by being ignored
        out = subprocess.run(
            cli_argv(None, "restore"), env=_env(state), capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 4, out
        assert "RESTORE FAILED" in out.stderr
        assert "cth_no_such_key" in out.stderr
        assert j.exists()


def test_conntrack_max_below_live_count_is_refused_untouched(tmp_path: Path) -> None:
    fake = FakeSysctls.create(tmp_path / "fake")
    state = tmp_path / "state"
    f = tmp_path / "s.yaml"
    f.write_text(
        yaml.safe_dump(
            {"name": "tiny", "host": {"nf_conntrack_max": 64}, "phases": [{"name": "a"}]}
        )
    )
    rid = new_run_id()
    before = Snapshot.take(fake, state, {rid}, set(), rid)
    out = subprocess.run(
        fake.argv(cli_argv(rid, "run", str(f))),
        env=fake.env(state, rid),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out.stderr
    assert "live count" in out.stderr
    assert "--force" in out.stderr
    assert "Traceback" not in out.stderr
    assert not Snapshot.take(fake, state, {rid}, set(), rid).leftovers_since(before)
    assert not Path(f"/run/netns/cth-{rid}-vpc").exists()


@pytest.mark.parametrize("command", [["run", "scenarios/exhaustion.yaml"], ["restore"]])
def test_non_root_exits_2_with_the_reason(tmp_path: Path, command: list[str]) -> None:
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) missing")
    out = subprocess.run(
        [
            "setpriv",
            "--reuid",
            "nobody",
            "--regid",
            "nogroup",
            "--clear-groups",
            *cli_argv(None, *command),
        ],
        env={**_env(tmp_path / "state"), "HOME": "/nonexistent"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "root" in out.stderr
    assert "Traceback" not in out.stderr


def test_doctor_names_the_package_of_a_missing_tool(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    missing = {"conntrack", "dnsmasq"}
    for tool in set(TOOLS) - missing:
        path = shutil.which(tool)
        if path:
            (bin_dir / tool).symlink_to(path)
    out = subprocess.run(
        cli_argv(None, "doctor"),
        env={**_env(tmp_path / "s"), "PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    for tool in missing:
        line = next(ln for ln in out.stdout.splitlines() if f"tool {tool} " in ln)
        assert line.startswith("[!!]")
        assert f"apt-get install {TOOLS[tool]}" in line
