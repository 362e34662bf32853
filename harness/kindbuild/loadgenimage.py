"""The loadgen image the kind backend runs in pods, built here (never pulled).

The Dockerfiles in ``loadgen/docker`` start from Docker Hub's python images, which no machine
here can pull. This builds the glibc flavour the same way the kind node images are built: a
Debian bookworm rootfs from ``debootstrap`` (Python 3.11, nftables, conntrack, procps,
iproute2: also the node tuner's needs) as one layer, and the project installed from its own
wheel (plus its dependencies' wheels, through pip) as a second layer, in
``/usr/local/lib/python3.11/dist-packages``. The musl flavour needs an Alpine rootfs, which
Debian's mirror does not serve: it is not built here.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cthcommon.errors import BackendError
from harness.kindbuild import kindbase
from harness.kindbuild.dockerd import DockerCli
from harness.kindbuild.imagearchive import ImageSpec, write_archive

PACKAGES = ("python3", "nftables", "conntrack", "procps", "iproute2")
SITE = "usr/local/lib/python3.11/dist-packages"
# the project's packages the image installs (from its wheel): a change to any rebuilds it
SOURCES = ("harness", "loadgen", "cthcommon")


def _run(argv: list[str], what: str, timeout_s: float = 900) -> None:
    p = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout_s)
    if p.returncode != 0:
        raise BackendError(f"{what} failed: {p.stderr[-1500:]}")


def _source_digest(project: Path) -> str:
    h = hashlib.sha256()
    files = [project / "pyproject.toml"]
    for pkg in SOURCES:
        files += sorted(
            p for p in (project / pkg).rglob("*") if p.is_file() and "__pycache__" not in p.parts
        )
    for f in files:
        h.update(str(f.relative_to(project)).encode() + b"\0" + f.read_bytes())
    h.update(Path(__file__).read_bytes())
    return h.hexdigest()[:12]


def _marker(tag: str, project: Path) -> str:
    """The second tag a built image carries: ``<repo>:src-<digest of its inputs>``."""
    key = f"{kindbase.rootfs_key(PACKAGES)}-{_source_digest(project)}"
    return f"{tag.rsplit(':', 1)[0]}:src-{key}"


def present(docker: DockerCli, tag: str, project: Path) -> bool:
    """Whether this daemon already has the image :func:`build` would build (same inputs)."""
    return kindbase.image_exists(docker, _marker(tag, project))


def build(docker: DockerCli, tag: str, project: Path) -> str:
    """Build and ``docker load`` the loadgen image as ``tag`` (skipped when its inputs, the
    rootfs and the project's source, are unchanged: the image carries their digest as a
    label-like second tag ``<repo>:src-<digest>``)."""
    marker = _marker(tag, project)
    if kindbase.image_exists(docker, marker):
        docker.cli("tag", marker, tag)
        return tag
    rootfs = kindbase.debootstrap("loadgen-rootfs", PACKAGES)
    rootfs_tar = kindbase.tar_rootfs(rootfs, rootfs.with_suffix(".tar"))
    with tempfile.TemporaryDirectory(prefix="cth-loadgen-", dir=kindbase.work_dir()) as td:
        tmp = Path(td)
        wheels, staging = tmp / "wheels", tmp / "root"
        _run(
            [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(wheels), str(project)],
            "pip wheel of the project",
        )
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--no-index",
                "--no-compile",
                "--find-links",
                str(wheels),
                "--target",
                str(staging / SITE),
                "conntrack-harness",
            ],
            "pip install of the wheels into the image root",
        )
        layer = tmp / "site.tar"
        _run(
            [
                "tar",
                "--numeric-owner",
                "--sort=name",
                "--mtime=@0",
                "--owner=0",
                "--group=0",
                "-C",
                str(staging),
                "-cf",
                str(layer),
                ".",
            ],
            "tar of the installed project",
        )
        spec = ImageSpec(
            tags=(tag, marker),
            files={},
            cmd=("python3", "-m", "loadgen.worker"),
            workdir="/",
            base_layers=(rootfs_tar, layer),
        )
        archive = tmp / "loadgen.tar"
        write_archive(spec, archive)
        docker.cli("load", "-i", str(archive), timeout_s=600)
        shutil.rmtree(staging, ignore_errors=True)
    return tag


HTTP_PACKAGES = ("nginx-light",)
HTTP_SERVER_REPO = "conntrack-harness/http-server"


def http_server_tag() -> str:
    return f"{HTTP_SERVER_REPO}:{kindbase.rootfs_key(HTTP_PACKAGES)}"


def build_http_server(docker: DockerCli) -> str:
    """The HTTP server pods' image: Debian's nginx-light on a bookworm rootfs (the
    upstream ``nginx:*-alpine`` cannot be pulled), serving its default site on port 80."""
    tag = http_server_tag()
    if kindbase.image_exists(docker, tag):
        return tag
    rootfs = kindbase.debootstrap("http-rootfs", HTTP_PACKAGES)
    rootfs_tar = kindbase.tar_rootfs(rootfs, rootfs.with_suffix(".tar"))
    with tempfile.TemporaryDirectory(prefix="cth-http-", dir=kindbase.work_dir()) as td:
        archive = Path(td) / "http.tar"
        spec = ImageSpec(
            tags=(tag,),
            files={},
            cmd=("nginx", "-g", "daemon off;"),
            base_layers=(rootfs_tar,),
        )
        write_archive(spec, archive)
        docker.cli("load", "-i", str(archive), timeout_s=600)
    return tag
