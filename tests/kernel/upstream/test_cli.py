"""`conntrack-harness upstream build|list` as a user runs them (a temporary cache; no root,
no network: only what is already cached is asked for)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.upstream.cache import Installed, install, staging


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONNTRACK_HARNESS_CACHE", str(tmp_path))
    return tmp_path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "upstream", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _put_etcd() -> None:
    with staging("etcd", "v3.6.6") as st:
        (st / "etcd").write_bytes(b"#!/bin/sh\n")
        install("etcd", "v3.6.6", {"etcd": Installed(st / "etcd", "go", "test", 1.0)})


def test_list_shows_each_pinned_binary_and_whether_it_is_there(cache: Path) -> None:
    _put_etcd()
    out = _cli("list", "--kubernetes", "v1.35.4", "--verify")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["kubernetes", "binary", "version", "source", "state", "path"]
    rows = {ln.split()[1]: ln.split() for ln in lines[1:]}
    assert rows["etcd"][2:5] == ["v3.6.6", "go", "present"]
    assert rows["kube-proxy"][2:5] == ["v1.35.4", "-", "missing"]
    assert rows["node-cache"][4] in ("blocked", "missing")
    assert set(rows) >= {"kube-apiserver", "kube-controller-manager", "coredns", "kubelet"}


def test_list_verify_catches_a_changed_binary(cache: Path) -> None:
    _put_etcd()
    (cache / "upstream" / "etcd-v3.6.6" / "etcd").write_bytes(b"tampered")
    out = _cli("list", "--kubernetes", "v1.35.4", "--verify")
    assert out.returncode == 2
    assert "CORRUPT" in out.stdout


def test_build_of_what_is_cached_does_nothing(cache: Path) -> None:
    _put_etcd()
    out = _cli("build", "--component", "etcd", "--source", "go")
    assert out.returncode == 0, out.stderr
    assert "everything is in the cache" in out.stdout


def test_bad_input_exits_2_naming_what_is_allowed(cache: Path) -> None:
    out = _cli("build", "--component", "kube-dns")
    assert out.returncode == 2
    assert "kube-proxy" in out.stderr
    out = _cli("build", "--kubernetes", "v1.2.3")
    assert out.returncode == 2
    assert "v1.35.4" in out.stderr
    assert not (cache / "upstream").exists()
