"""Fetch the official release binaries and check them against the published sha256.

For machines that reach the upstream download sites (here only the Go build works). Sources:

- Kubernetes: ``https://dl.k8s.io/release/V/bin/linux/ARCH/BINARY`` and ``BINARY.sha256``;
- etcd: ``https://github.com/etcd-io/etcd/releases/download/V/etcd-V-linux-ARCH.tar.gz``,
  checked against that release's ``SHA256SUMS``;
- CoreDNS: ``https://github.com/coredns/coredns/releases/download/V/coredns_X.Y.Z_linux_ARCH.tgz``
  and ``.tgz.sha256``;
- node-cache is published only as a container image: no download, build it.

A mirror (``--mirror URL``) serves the same paths under ``URL/HOST/...``. A file whose hash
differs from the published one raises :class:`ChecksumMismatch`; the caller installs nothing.
"""

from __future__ import annotations

import hashlib
import platform
import re
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.upstream.errors import ChecksumMismatch, DownloadUnavailable, DownloadUnreachable

TIMEOUT_S = 30.0
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True)
class Artifact:
    """Where one binary comes from: a file (``member`` None) or a member of a tarball."""

    url: str
    checksum_url: str
    member: str | None = None

    @property
    def filename(self) -> str:
        return urlsplit(self.url).path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Fetched:
    path: Path
    seconds: float
    origin: str  # the URL, and the archive member


def go_arch(machine: str | None = None) -> str:
    m = (machine or platform.machine()).lower()
    return {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(m, m)


def mirrored(url: str, mirror: str | None) -> str:
    """``https://HOST/PATH`` as served by ``mirror``: ``MIRROR/HOST/PATH``."""
    if not mirror:
        return url
    parts = urlsplit(url)
    return f"{mirror.rstrip('/')}/{parts.netloc}{parts.path}"


def artifact(
    component: str, version: str, binary: str, arch: str, mirror: str | None = None
) -> Artifact:
    """The official release file for ``binary`` of ``component@version``."""
    if component == "kubernetes":
        url = f"https://dl.k8s.io/release/{version}/bin/linux/{arch}/{binary}"
        return Artifact(mirrored(url, mirror), mirrored(url + ".sha256", mirror))
    if component == "etcd":
        base = f"https://github.com/etcd-io/etcd/releases/download/{version}"
        name = f"etcd-{version}-linux-{arch}"
        return Artifact(
            mirrored(f"{base}/{name}.tar.gz", mirror),
            mirrored(f"{base}/SHA256SUMS", mirror),
            member=f"{name}/{binary}",
        )
    if component == "coredns":
        base = f"https://github.com/coredns/coredns/releases/download/{version}"
        url = f"{base}/coredns_{version.removeprefix('v')}_linux_{arch}.tgz"
        return Artifact(mirrored(url, mirror), mirrored(url + ".sha256", mirror), member=binary)
    raise DownloadUnavailable(
        f"{component} has no official binary release (only a container image): build it "
        "with `--source go`"
    )


def expected_sha256(checksums: str, filename: str) -> str:
    """The hash for ``filename`` in a checksum file: ``HASH  NAME`` lines (sha256sum's
    format; ``*NAME`` for binary mode) or a file holding the bare hash."""
    tokens = checksums.split()
    if len(tokens) == 1 and _HEX64.match(tokens[0]):
        return tokens[0].lower()
    for line in checksums.splitlines():
        parts = line.split()
        if len(parts) == 2 and _HEX64.match(parts[0]):
            name = parts[1].lstrip("*").removeprefix("./")
            if name == filename:
                return parts[0].lower()
    raise ChecksumMismatch(f"the checksum file names no sha256 for {filename}")


def _open(url: str) -> Any:
    try:
        return urllib.request.urlopen(url, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        raise DownloadUnavailable(f"{url}: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadUnreachable(f"{url}: {reason}") from e


def fetch_text(url: str) -> str:
    with _open(url) as resp:
        return bytes(resp.read(1 << 20)).decode("utf-8", "replace")


def fetch_file(url: str, dest: Path) -> str:
    """Stream ``url`` into ``dest``; its sha256."""
    h = hashlib.sha256()
    try:
        with _open(url) as resp, dest.open("wb") as f:
            while chunk := resp.read(1 << 20):
                h.update(chunk)
                f.write(chunk)
    except (TimeoutError, ConnectionError) as e:
        raise DownloadUnavailable(f"{url}: {e}") from e
    return h.hexdigest()


def _extract(archive: Path, member: str, dest: Path) -> None:
    with tarfile.open(archive) as tar:
        try:
            info = tar.getmember(member)
        except KeyError as e:
            raise DownloadUnavailable(f"{archive.name} holds no {member}") from e
        src = tar.extractfile(info) if info.isfile() else None
        if src is None:
            raise DownloadUnavailable(f"{member} in {archive.name} is not a regular file")
        with src, dest.open("wb") as f:
            while chunk := src.read(1 << 20):
                f.write(chunk)


def download(
    component: str,
    version: str,
    binaries: tuple[str, ...],
    out_dir: Path,
    *,
    arch: str | None = None,
    mirror: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Fetched]:
    """Fetch and verify ``binaries`` into ``out_dir``; a mismatch raises before anything is
    returned (the caller deletes ``out_dir``)."""
    arch = arch or go_arch()
    out: dict[str, Fetched] = {}
    verified: dict[str, Path] = {}  # url -> verified file (one tarball serves many binaries)
    for b in binaries:
        art = artifact(component, version, b, arch, mirror)
        t0 = time.monotonic()
        if art.url not in verified:
            progress(f"  downloading {art.url}")
            want = expected_sha256(fetch_text(art.checksum_url), art.filename)
            dest = out_dir / (f".{art.filename}" if art.member else b)
            got = fetch_file(art.url, dest)
            if got != want:
                dest.unlink(missing_ok=True)
                raise ChecksumMismatch(
                    f"{art.url}: sha256 {got} is not the published {want} "
                    f"({art.checksum_url}); nothing installed"
                )
            verified[art.url] = dest
        if art.member:
            _extract(verified[art.url], art.member, out_dir / b)
            origin = f"{art.url} ({art.member}, sha256 verified)"
        else:
            origin = f"{art.url} (sha256 verified)"
        out[b] = Fetched(out_dir / b, time.monotonic() - t0, origin)
    for path in verified.values():
        if path.name.startswith("."):  # an archive: only its members are installed
            path.unlink(missing_ok=True)
    return out
