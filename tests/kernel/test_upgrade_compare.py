"""The upgrade check on the real parts (issue 12 item 8): `compare --run` runs one short
DNS-only scenario on both pinned Kubernetes releases, each with its own control plane,
kube-proxy and CoreDNS, and compares the two results. Nothing may be left on the host.

The second release is whatever `compare --run` finds missing on this machine: on a fresh one
it builds that release's etcd, CoreDNS, control plane and kube-proxy first, with progress on
stderr, as a user's first upgrade check does (a few minutes once; the cache keeps them).
Nothing is skipped for a part that is not built yet: the on-demand build is part of what is
tested."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.upstream import ComponentMissing, default_version, locate, releases
from harness.upstream.ondemand import NETNS_BINARIES
from tests.kernel.conftest import HostSnapshot

pytestmark = pytest.mark.kernel

SCENARIO = Path(__file__).parent / "scenarios" / "upgrade-dns-short.yaml"


def _two_releases() -> tuple[str, str]:
    pinned = sorted(releases())
    if len(pinned) < 2:
        pytest.fail(f"versions.toml pins fewer than two Kubernetes releases: {pinned}")
    # the default release (make setup builds it) against the newest other one
    a = default_version()
    b = max((v for v in pinned if v != a), key=lambda v: tuple(int(x) for x in v[1:].split(".")))
    return a, b


def _in_cache(version: str) -> bool:
    try:
        for binary in NETNS_BINARIES:
            locate(binary, version)
    except ComponentMissing:
        return False
    return True


def test_compare_runs_one_scenario_on_two_releases(
    tmp_path: Path, host_unchanged: HostSnapshot
) -> None:
    a, b = _two_releases()
    built_before = _in_cache(b)
    out = tmp_path / "reports"
    argv = ["compare", "--run", str(SCENARIO), "--kubernetes", a, b, "--report-dir", str(out)]
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", *argv, "--wait", "120", "--json"],
        capture_output=True,
        text=True,
        timeout=3600,  # a fresh machine builds release b first
        check=False,
    )
    assert proc.returncode in (0, 1, 6), proc.stderr[-3000:]  # 2/3/5 would be a broken run
    # what was missing was built, once, with progress; what was there was not rebuilt
    assert _in_cache(b)
    building = f"Kubernetes {b} is used for the first time here: building"
    assert (building in proc.stderr) is not built_before, proc.stderr[-3000:]
    assert f"Kubernetes {a} is used for the first time" not in proc.stderr
    diff = json.loads(proc.stdout)  # the runs' own output goes to stderr
    # each release ran in its own report directory with its own parts
    for v in (a, b):
        result = json.loads((out / v / "result.json").read_text())
        assert result["environment"]["components"]["kube-proxy"]["version"] == v
        assert [p["name"] for p in result["phases"]] == ["baseline", "single-request-reopen"]
        assert all(p["dns"]["lookups"] > 0 for p in result["phases"])
    kube_proxy = diff["environment"]["components"]["kube-proxy"]
    assert (kube_proxy["a"], kube_proxy["b"], kube_proxy["changed"]) == (a, b, True)
    assert diff["environment"]["components"]["coredns"]["changed"]  # kubeadm pins differ
    assert not diff["environment"]["kernel"]["changed"]
    assert [(p["name"], p["repeat_index"]) for p in diff["phases"]] == [
        ("baseline", 0),
        ("single-request-reopen", 0),
    ]
    for p in diff["phases"]:
        assert p["a"]["ci"] is not None
        assert p["b"]["ci"] is not None
    # the exit code is the verdict comparison, whichever way it went: 1 a verdict changed,
    # else 6 when a phase was not measured in steady state in either run, else 0
    changed = any(p["verdict_changed"] for p in diff["phases"])
    unsure = any(p["inconclusive"] for p in diff["phases"])
    assert diff["verdict_changed"] is changed
    assert diff["inconclusive"] is unsure
    assert proc.returncode == (1 if changed else 6 if unsure else 0)
