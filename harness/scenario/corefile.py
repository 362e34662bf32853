"""Which file a scenario may name as its Corefile, checked when the scenario is loaded.

The harness runs as root and copies the Corefile into the run's files, its evidence and the
bug bundle others re-run, and quotes its lines in errors. So a scenario may only name a file
that belongs with it:

- the path is relative to the scenario file's directory, or absolute, and either way must
  resolve (symbolic links followed) to a file inside that directory or below it: a
  scenario cannot make the harness read ``/etc/shadow`` or ``../../etc/passwd``;
- it is a regular file (no directory, FIFO or device), readable, at most
  :data:`MAX_COREFILE_BYTES`, UTF-8 text without control characters;
- it has a ``kubernetes`` plugin: CoreDNS serves the cluster's names from it.

Whether CoreDNS accepts it is decided before the host lock by CoreDNS itself (the netns
backend's pre-check). Pure apart from reading the file.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from cthcommon.corefile import has_kubernetes_plugin

MAX_COREFILE_BYTES = 64 * 1024

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def resolve_corefile(value: str, base_dir: Path) -> Path:
    """The file ``value`` names, relative to ``base_dir`` (the scenario file's directory),
    checked as the module says; ValueError saying what is allowed."""
    base = base_dir.resolve()
    where = f"the scenario file's directory {base}"
    path = (base / value).resolve()
    if not path.is_relative_to(base):
        raise ValueError(
            f"the Corefile must be a file inside {where} or below it (relative paths resolve "
            f"from there, symbolic links are followed), and this one is {path}: the harness "
            "runs as root and copies the Corefile into the run's evidence and bug bundle, so "
            "a scenario names only files that travel with it; copy yours next to it"
        )
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ValueError(f"Corefile not found: {value!r} (looked for {path})") from None
    except OSError as e:
        raise ValueError(f"cannot read the Corefile {path}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"the Corefile must be a regular file; {path} is not")
    if st.st_size > MAX_COREFILE_BYTES:
        raise ValueError(
            f"the Corefile is {st.st_size} bytes; it may be at most {MAX_COREFILE_BYTES} "
            f"bytes ({MAX_COREFILE_BYTES // 1024} KiB)"
        )
    check_text(read_text(path))
    return path


def read_text(path: Path) -> str:
    """The Corefile as text, read without following a FIFO swapped in meanwhile (ValueError
    when it cannot be read or is no UTF-8 text)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise ValueError(f"the Corefile must be a regular file; {path} is not")
            data = f.read(MAX_COREFILE_BYTES + 1)
    except OSError as e:
        raise ValueError(f"cannot read the Corefile {path}: {e.strerror or e}") from None
    if len(data) > MAX_COREFILE_BYTES:
        raise ValueError(f"the Corefile may be at most {MAX_COREFILE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"the Corefile must be UTF-8 text; {path} is not") from None


def check_text(text: str) -> None:
    """ValueError when ``text`` cannot be a Corefile the harness runs (pure)."""
    m = _CONTROL.search(text)
    if m is not None:
        line = text.count("\n", 0, m.start()) + 1
        raise ValueError(
            f"the Corefile must be text; line {line} has control character {m.group()!r}"
        )
    if not has_kubernetes_plugin(text):
        raise ValueError(
            "the Corefile has no kubernetes plugin: it serves the cluster's DNS, so it needs "
            "one (as kubeadm's has: `kubernetes cluster.local in-addr.arpa ip6.arpa`)"
        )
