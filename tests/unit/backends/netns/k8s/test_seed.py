"""The kept empty control plane's cache entry: its key, its age, store and restore."""

import json
import os
import time
from pathlib import Path

import pytest

from harness.backends.netns.k8s import seed as S

pytestmark = pytest.mark.unit

BINS = {"etcd": "a1", "kube-apiserver": "b2", "kube-controller-manager": "c3"}
CONFIG = {"settings": {"ip": "172.18.0.2"}, "kube-apiserver": ["--v=1"]}


def test_the_key_changes_with_every_input(monkeypatch: pytest.MonkeyPatch) -> None:
    base = S.key(S.key_inputs(BINS, CONFIG))
    assert base == S.key(S.key_inputs(dict(reversed(BINS.items())), CONFIG))  # order-free
    assert base != S.key(S.key_inputs({**BINS, "kube-apiserver": "b3"}, CONFIG))
    assert base != S.key(S.key_inputs(BINS, {**CONFIG, "kube-apiserver": ["--v=2"]}))
    monkeypatch.setattr(S, "__version__", "9.9.9")
    assert base != S.key(S.key_inputs(BINS, CONFIG))
    monkeypatch.setattr(S, "FORMAT", S.FORMAT + 1)
    assert S.key_inputs(BINS, CONFIG)["format"] == S.FORMAT


def test_an_entry_is_used_only_while_fresh() -> None:
    assert S.fresh(1000.0, 1000.0 + S.MAX_AGE_S - 1)
    assert not S.fresh(1000.0, 1000.0 + S.MAX_AGE_S)
    assert not S.fresh(1000.0, 999.0)  # made in the future: the clock moved


def _stopped_plane(tmp: Path) -> tuple[Path, Path]:
    pki, etcd = tmp / "run" / "pki", tmp / "run" / "etcd"
    (etcd / "member" / "wal").mkdir(parents=True)
    (etcd / "member" / "wal" / "0.wal").write_bytes(b"wal")
    pki.mkdir(parents=True)
    (pki / "ca.crt").write_text("CA")
    (pki / "admin.kubeconfig").write_text(f"client-certificate: {pki}/admin.crt")
    return pki, etcd


def test_store_then_restore_gives_a_run_its_own_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNTRACK_HARNESS_CACHE", str(tmp_path / "cache"))
    pki, etcd = _stopped_plane(tmp_path)
    inputs = S.key_inputs(BINS, CONFIG)
    name = S.key(inputs)
    assert S.lookup(name) is None
    entry = S.store(name, inputs, pki, etcd)
    assert S.lookup(name) == entry == S.seeds_dir() / name
    assert json.loads((entry / S.STAMP).read_text())["inputs"]["binaries"] == BINS
    assert not list(S.seeds_dir().glob(".tmp-*"))
    run_pki, run_etcd = tmp_path / "run2" / "pki", tmp_path / "run2" / "etcd"
    run_pki.mkdir(parents=True)
    S.restore(entry, run_pki, run_etcd)
    assert (run_pki / "ca.crt").read_text() == "CA"
    assert not (run_pki / "admin.kubeconfig").exists()  # names the old paths: rewritten
    (run_etcd / "member" / "wal" / "0.wal").write_bytes(b"changed by the run")
    assert (entry / "etcd" / "member" / "wal" / "0.wal").read_bytes() == b"wal"


def test_a_stale_entry_is_not_used_and_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNTRACK_HARNESS_CACHE", str(tmp_path / "cache"))
    pki, etcd = _stopped_plane(tmp_path)
    name = S.key(S.key_inputs(BINS, CONFIG))
    entry = S.store(name, {}, pki, etcd)
    assert S.lookup(name, now=time.time() + S.MAX_AGE_S + 1) is None
    assert S.store(name, {}, pki, etcd) == entry
    assert S.lookup(name) == entry


def test_a_partial_entry_left_by_a_killed_run_is_never_used_and_is_dropped_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNTRACK_HARNESS_CACHE", str(tmp_path / "cache"))
    pki, etcd = _stopped_plane(tmp_path)
    name = S.key(S.key_inputs(BINS, CONFIG))
    partial = S.seeds_dir() / f".tmp-{name}-1"
    partial.mkdir(parents=True)
    assert S.lookup(name) is None
    old = time.time() - S.PARTIAL_MAX_AGE_S - 5
    os.utime(partial, (old, old))
    S.store(name, {}, pki, etcd)
    assert not partial.exists()


def test_the_control_planes_key_ignores_the_run_and_follows_the_settings(tmp_path: Path) -> None:
    from harness.backends.netns.k8s.controlplane import ControlPlane, ControlPlaneConfig

    def name(cfg: ControlPlaneConfig) -> str:
        return S.key(ControlPlane(cfg, None, tmp_path).seed_inputs())  # type: ignore[arg-type]

    a = ControlPlaneConfig(run_id="aaaaaa", ns="cth-aaaaaa-cp", vpc_ns="cth-aaaaaa-vpc")
    b = ControlPlaneConfig(run_id="bbbbbb", ns="cth-bbbbbb-cp", vpc_ns=None)
    assert name(a) == name(b)
    assert name(a) != name(ControlPlaneConfig(run_id="a", ns="n", cluster_domain="corp.local"))
    assert name(a) != name(ControlPlaneConfig(run_id="a", ns="n", controllers=("endpointslice",)))


def test_the_release_is_keyed_by_its_binaries_not_by_its_name(tmp_path: Path) -> None:
    from harness.backends.netns.k8s.controlplane import ControlPlane, ControlPlaneConfig
    from harness.upstream import default_version

    def name(cfg: ControlPlaneConfig) -> str:
        return S.key(ControlPlane(cfg, None, tmp_path).seed_inputs())  # type: ignore[arg-type]

    default = default_version()
    assert name(ControlPlaneConfig(run_id="a", ns="n")) == name(
        ControlPlaneConfig(run_id="a", ns="n", kubernetes=default)
    )
