"""The cache: atomic installs, stamps that keep earlier binaries, one builder at a time.
Files in a temporary cache directory; no root needed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.upstream import ComponentMissing, component_dir, locate, read_stamp
from harness.upstream.cache import Installed, build_lock, install, sha256_of, staging


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("CONNTRACK_HARNESS_CACHE", str(d))
    return d / "upstream"


def _made(d: Path, name: str, body: bytes) -> Installed:
    p = d / name
    p.write_bytes(body)
    return Installed(p, "go", f"test {name}", 1.0)


def test_install_adds_to_the_stamp_and_keeps_what_was_there(cache: Path) -> None:
    with staging("kubernetes", "v1.35.4") as st:
        install("kubernetes", "v1.35.4", {"kube-proxy": _made(st, "kube-proxy", b"p")})
    with staging("kubernetes", "v1.35.4") as st:
        install(
            "kubernetes",
            "v1.35.4",
            {"kubelet": _made(st, "kubelet", b"k")},
            run={"binaries": ["kubelet"], "seconds": 2.0, "cold": True},
        )
    stamp = read_stamp("kubernetes", "v1.35.4")
    assert stamp is not None
    assert sorted(stamp["binaries"]) == ["kube-proxy", "kubelet"]
    assert stamp["runs"][-1]["binaries"] == ["kubelet"]
    d = component_dir("kubernetes", "v1.35.4")
    for b in ("kube-proxy", "kubelet"):
        assert stamp["binaries"][b]["sha256"] == sha256_of(d / b)
        assert locate(b, "v1.35.4") == d / b
    assert list((cache / ".tmp").iterdir()) == []


def test_a_binary_the_stamp_does_not_list_is_not_located(cache: Path) -> None:
    d = component_dir("etcd", "v3.6.6")
    d.mkdir(parents=True)
    (d / "etcd").write_bytes(b"half-written")
    with pytest.raises(ComponentMissing, match=r"etcd v3\.6\.6"):
        locate("etcd", "v1.35.4")
    (d / ".complete").write_text('{"binaries": {}}')
    with pytest.raises(ComponentMissing):
        locate("etcd", "v1.35.4")
    (d / ".complete").write_text("{not json")
    with pytest.raises(ComponentMissing):
        locate("etcd", "v1.35.4")


def test_a_failed_build_leaves_no_staging_directory(cache: Path) -> None:
    with pytest.raises(RuntimeError), staging("etcd", "v3.6.6") as st:
        (st / "etcd").write_bytes(b"x")
        raise RuntimeError("build failed")
    assert list((cache / ".tmp").iterdir()) == []
    assert not component_dir("etcd", "v3.6.6").exists()


def test_a_second_builder_waits_for_the_first(cache: Path) -> None:
    lines: list[str] = []
    waiter = (
        "import time\n"
        "from harness.upstream.cache import build_lock\n"
        "t0 = time.monotonic()\n"
        "with build_lock(lambda s: print(s, flush=True)):\n"
        "    print(f'got it after {time.monotonic() - t0:.2f}', flush=True)\n"
    )
    with build_lock(lines.append):
        proc = subprocess.Popen(
            [sys.executable, "-c", waiter],
            stdout=subprocess.PIPE,
            text=True,
            env=dict(os.environ),
        )
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("waiting for another upstream build")
        assert f"pid {os.getpid()}" in first
        time.sleep(0.5)
        assert proc.poll() is None  # still waiting while we hold it
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert float(out.split()[-1]) >= 0.5
    assert lines == []  # the first builder did not wait


def test_doctor_names_each_part_its_version_and_origin(cache: Path) -> None:
    from harness.doctor import upstream_checks

    with staging("etcd", "v3.6.6") as st:
        install("etcd", "v3.6.6", {"etcd": _made(st, "etcd", b"e")})
    checks = {c.name: c for c in upstream_checks()}
    etcd = checks["upstream etcd"]
    assert etcd.ok
    assert "v3.6.6 from test etcd" in etcd.detail
    assert str(component_dir("etcd", "v3.6.6") / "etcd") in etcd.detail
    proxy = checks["upstream kube-proxy"]
    assert not proxy.ok
    assert "v1.35.4 missing" in proxy.detail
    assert "upstream build" in proxy.detail
    assert {"upstream coredns", "upstream node-cache", "upstream kube-apiserver"} <= set(checks)


def test_the_cold_build_figure_adds_up_one_complete_cold_run(cache: Path) -> None:
    from bench.upstream import measure

    def put(component: str, version: str, bins: tuple[str, ...], secs: float, run: str) -> None:
        with staging(component, version) as st:
            made = {b: _made(st, b, b.encode()) for b in bins}
            record = {"binaries": list(bins), "seconds": secs, "cold": True, "cold_run": run}
            install(component, version, made, run=record)

    put("etcd", "v3.6.6", ("etcd",), 100.0, "run-1")
    put("coredns", "v1.13.1", ("coredns",), 200.0, "run-1")
    put(
        "kubernetes",
        "v1.35.4",
        ("kube-apiserver", "kube-controller-manager", "kube-proxy"),
        900.0,
        "run-1",
    )
    value, detail = measure("v1.35.4")
    assert value is None, "kubelet, kubeadm, kube-scheduler, kubectl not built in that run yet"
    assert "kubernetes/kubelet" in detail["needs"]
    put(
        "kubernetes",
        "v1.35.4",
        ("kubelet", "kubeadm", "kube-scheduler", "kubectl"),
        300.0,
        "run-1",
    )
    value, detail = measure("v1.35.4")
    assert value == 1500.0
    assert sorted(p["seconds"] for p in detail["parts"]) == [100.0, 200.0, 300.0, 900.0]
    assert detail["left_out_blocked"] == ["node-cache"]
    # a newer partial cold run does not replace the complete one
    put("etcd", "v3.6.6", ("etcd",), 50.0, "run-2")
    assert measure("v1.35.4")[0] == 1500.0


def test_components_describe_the_release_for_result_json(cache: Path) -> None:
    from harness.upstream import components

    with staging("etcd", "v3.6.6") as st:
        install("etcd", "v3.6.6", {"etcd": _made(st, "etcd", b"e")})
    info = components("v1.35.4")
    assert info["etcd"]["version"] == "v3.6.6"
    assert info["etcd"]["source"] == "go"
    assert info["etcd"]["sha256"] == sha256_of(component_dir("etcd", "v3.6.6") / "etcd")
    assert info["kube-proxy"] == {
        "component": "kubernetes",
        "version": "v1.35.4",
        "source": None,
        "origin": None,
        "sha256": None,
    }
    assert set(info) >= {"coredns", "node-cache", "kube-apiserver"}


def test_a_blocked_part_says_why_it_is_missing(cache: Path) -> None:
    from harness.upstream import release

    if not release("v1.35.4").node_cache_blocked:
        pytest.skip("versions.toml marks nothing blocked")
    with pytest.raises(ComponentMissing, match="blocked"):
        locate("node-cache", "v1.35.4")
