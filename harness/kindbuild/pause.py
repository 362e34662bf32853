"""The pod sandbox ``pause`` binary, compiled here from the pinned Kubernetes source.

``build/pause/linux/pause.c`` of ``k8s.io/kubernetes`` (from the Go module cache, fetched
through the Go module proxy), compiled static with gcc as upstream's Makefile does
(``-Os -Wall -Werror -static -DVERSION=v<tag>-<rev>``), into
``<cache>/upstream/pause-<tag>/pause``. The tag is the one the pinned kubeadm names
(``PauseVersion`` in ``cmd/kubeadm/app/constants``).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

from cthcommon.errors import BackendError, MissingTool
from harness.upstream import component_dir, gobuild

PAUSE_REV = "0"


def kubernetes_source(version: str) -> Path:
    """The ``k8s.io/kubernetes`` module directory at ``version`` (downloaded if missing)."""
    return gobuild.module_dir("k8s.io/kubernetes", version)


def pause_version(source: Path) -> str:
    """kubeadm's ``PauseVersion`` in that source tree."""
    text = (source / "cmd/kubeadm/app/constants/constants.go").read_text()
    m = re.search(r'PauseVersion\s*=\s*"([^"]+)"', text)
    if not m:
        raise BackendError("PauseVersion not found in kubeadm's constants.go")
    return m.group(1)


def build(kubernetes_version: str) -> tuple[str, Path]:
    """Compile pause (cached); returns (its image tag, the binary)."""
    src = kubernetes_source(kubernetes_version)
    tag = pause_version(src)
    out_dir = component_dir("pause", tag)
    binary = out_dir / "pause"
    if (out_dir / ".complete").is_file() and binary.is_file():
        return tag, binary
    if shutil.which("gcc") is None:
        raise MissingTool("gcc is not on PATH (apt-get install gcc libc6-dev)", tool="gcc")
    out_dir.mkdir(parents=True, exist_ok=True)
    source = src / "build/pause/linux/pause.c"
    argv = [
        "gcc",
        "-Os",
        "-Wall",
        "-Werror",
        "-static",
        f"-DVERSION=v{tag}-{PAUSE_REV}",
        "-o",
        str(binary),
        str(source),
    ]
    p = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=300)
    if p.returncode != 0:
        raise BackendError(f"compiling pause failed: {p.stderr[-1000:]}")
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()
    meta = {"source": f"k8s.io/kubernetes@{kubernetes_version}/build/pause/linux/pause.c"}
    (out_dir / ".complete").write_text(json.dumps({**meta, "sha256": {"pause": digest}}))
    return tag, binary
