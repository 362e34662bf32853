"""The release download path, against a local HTTP server on 127.0.0.1 serving fixture
releases laid out as the official sites do (``MIRROR/HOST/PATH``). No root needed."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.upstream import ComponentMissing, locate, read_stamp, release
from harness.upstream.build import Outcome, make, missing, plan, run, selection
from harness.upstream.errors import ChecksumMismatch

ETCD = b"#!/bin/sh\necho 'etcd Version: fixture'\n"
KUBE_PROXY = b"#!/bin/sh\necho 'Kubernetes fixture'\n"


@dataclass
class Mirror:
    root: Path
    url: str
    requests: list[str] = field(default_factory=list)

    def put(self, path: str, data: bytes) -> None:
        p = self.root / path
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    root = tmp_path / "www"
    root.mkdir()
    seen: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            seen.append(self.path)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
    )
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield Mirror(root, f"http://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()
        t.join(5)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "cache"
    monkeypatch.setenv("CONNTRACK_HARNESS_CACHE", str(d))
    return d / "upstream"


def _tarball(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _serve_etcd(m: Mirror, version: str, *, published_hash: str | None = None) -> bytes:
    name = f"etcd-{version}-linux-amd64"
    tgz = _tarball({f"{name}/etcd": ETCD, f"{name}/etcdctl": b"ctl", f"{name}/README.md": b"r"})
    base = f"github.com/etcd-io/etcd/releases/download/{version}"
    m.put(f"{base}/{name}.tar.gz", tgz)
    digest = published_hash or hashlib.sha256(tgz).hexdigest()
    other = "0" * 64
    m.put(
        f"{base}/SHA256SUMS",
        f"{other}  etcd-{version}-darwin-arm64.zip\n{digest}  {name}.tar.gz\n".encode(),
    )
    return tgz


def _build(m: Mirror, names: list[str], lines: list[str]) -> list[Outcome]:
    rel = release("v1.35.4")
    tasks = plan([rel], selection(names), lambda c, v, b: False)
    return run(tasks, "download", mirror=m.url, say=lines.append)


def test_a_verified_download_is_installed_and_located(mirror: Mirror, cache: Path) -> None:
    _serve_etcd(mirror, "v3.6.6")
    lines: list[str] = []
    [outcome] = _build(mirror, ["etcd"], lines)
    assert outcome.status == "installed"
    path = locate("etcd", "v1.35.4")
    assert path == cache / "etcd-v3.6.6" / "etcd"
    assert path.read_bytes() == ETCD
    assert path.stat().st_mode & 0o111
    stamp = read_stamp("etcd", "v3.6.6")
    assert stamp is not None
    entry = stamp["binaries"]["etcd"]
    assert entry["sha256"] == hashlib.sha256(ETCD).hexdigest()
    assert entry["source"] == "download"
    assert "sha256 verified" in entry["origin"]
    assert stamp["runs"][-1]["source"] == "download"
    assert stamp["runs"][-1]["cold"] is False
    assert sorted(p.name for p in (cache / "etcd-v3.6.6").iterdir()) == [".complete", "etcd"]
    assert list((cache / ".tmp").iterdir()) == []
    # progress: which component, and how long it took
    assert any("etcd v3.6.6" in ln and "installed in" in ln and " s " in ln for ln in lines)


def test_a_bad_checksum_fails_and_leaves_nothing_in_the_cache(mirror: Mirror, cache: Path) -> None:
    _serve_etcd(mirror, "v3.6.6", published_hash="ab" * 32)
    lines: list[str] = []
    [outcome] = _build(mirror, ["etcd"], lines)
    assert outcome.status == "failed"
    assert "sha256" in outcome.detail
    assert "nothing installed" in outcome.detail
    assert not (cache / "etcd-v3.6.6").exists()
    assert list((cache / ".tmp").iterdir()) == []
    with pytest.raises(ComponentMissing):
        locate("etcd", "v1.35.4")


def test_auto_does_not_fall_back_to_building_on_a_bad_checksum(
    mirror: Mirror, cache: Path, tmp_path: Path
) -> None:
    _serve_etcd(mirror, "v3.6.6", published_hash="cd" * 32)
    [task] = plan([release("v1.35.4")], {"etcd"}, lambda c, v, b: False)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ChecksumMismatch):
        make(task, out, "auto", mirror=mirror.url, say=lambda _: None)


def test_a_kubernetes_binary_with_its_bare_sha256_file(mirror: Mirror, cache: Path) -> None:
    base = "dl.k8s.io/release/v1.35.4/bin/linux/amd64"
    mirror.put(f"{base}/kube-proxy", KUBE_PROXY)
    mirror.put(f"{base}/kube-proxy.sha256", hashlib.sha256(KUBE_PROXY).hexdigest().encode())
    [outcome] = _build(mirror, ["kube-proxy"], [])
    assert outcome.status == "installed"
    assert locate("kube-proxy", "v1.35.4").read_bytes() == KUBE_PROXY
    # the rest of the release is still missing, and says how to get it
    with pytest.raises(ComponentMissing, match="upstream build"):
        locate("kube-apiserver", "v1.35.4")


def test_building_again_fetches_nothing(mirror: Mirror, cache: Path) -> None:
    _serve_etcd(mirror, "v3.6.6")
    _build(mirror, ["etcd"], [])
    first = len(mirror.requests)
    assert first >= 2  # checksum file and tarball
    assert plan([release("v1.35.4")], {"etcd"}, lambda c, v, b: not missing(c, v, b)) == []
    # run() re-checks under the lock too: a task another builder finished is skipped
    lines: list[str] = []
    tasks = plan([release("v1.35.4")], {"etcd"}, lambda c, v, b: False)
    assert run(tasks, "download", mirror=mirror.url, say=lines.append) == []
    assert len(mirror.requests) == first
    assert any("already in the cache" in ln for ln in lines)


def test_node_cache_has_no_release_download(mirror: Mirror, cache: Path) -> None:
    [outcome] = _build(mirror, ["node-cache"], [])
    assert outcome.status == "failed"
    assert "container image" in outcome.detail
    assert mirror.requests == []
