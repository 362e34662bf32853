"""The binaries in the real cache are what the versions file pins: each reports its pinned
version and is static (no ELF interpreter: CGO_ENABLED=0). A part not built yet is skipped
with the command that builds it."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from harness.upstream import BINARY_COMPONENT, ComponentMissing, locate, release, releases

PT_INTERP = 3


def _has_interpreter(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(64)
        assert head[:4] == b"\x7fELF", f"{path} is not an ELF file"
        assert head[4] == 2, "64-bit ELF expected"
        (phoff,) = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return any(struct.unpack_from("<I", table, i * phentsize)[0] == PT_INTERP for i in range(phnum))


def _version_argv(binary: str) -> list[str]:
    return {
        "coredns": ["-version"],
        "node-cache": ["-version"],
        "kubeadm": ["version", "-o", "short"],
        "kubectl": ["version", "--client"],
    }.get(binary, ["--version"])


CASES = [(k, b) for k in sorted(releases()) for b in BINARY_COMPONENT]


@pytest.mark.parametrize(("kubernetes", "binary"), CASES)
def test_a_cached_binary_reports_its_pinned_version(kubernetes: str, binary: str) -> None:
    try:
        path = locate(binary, kubernetes)
    except ComponentMissing as e:
        pytest.skip(str(e))
    rel = release(kubernetes)
    want = rel.version_of(BINARY_COMPONENT[binary]).removeprefix("v")
    argv = [str(path), *_version_argv(binary)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert want in text, f"{binary} says {text.strip()[:200]!r}, pinned {want}"
    assert not _has_interpreter(path), f"{path} is dynamically linked"
