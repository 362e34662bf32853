"""Putting binaries into the cache: one builder at a time, nothing half-written ever visible.

- :func:`build_lock` serialises builders (``<cache>/upstream/.lock``, flock); a second one
  says whose build it waits for, then waits.
- :func:`staging` is a scratch directory on the cache's filesystem; it is removed on every
  exit, so a failed build or a bad checksum leaves nothing behind.
- :func:`install` renames each finished binary into ``<component>-<version>/`` (atomic on
  one filesystem), then rewrites the ``.complete`` stamp (write, fsync, rename). A binary
  counts as installed only once the stamp lists it, so a crash between the two costs a
  rebuild, never a truncated binary.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.upstream import STAMP, cache_dir, component_dir, read_stamp


@dataclass(frozen=True)
class Installed:
    """One binary to install, and how it was made."""

    path: Path  # in the staging directory
    source: str  # "go" | "download"
    origin: str
    seconds: float
    cold: bool = False  # built with an empty Go build cache


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


@contextlib.contextmanager
def build_lock(say: Callable[[str], None] = lambda _: None) -> Iterator[None]:
    root = cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    path = root / ".lock"
    with path.open("a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            say(f"waiting for another upstream build ({f.read().strip() or 'unknown pid'})")
            fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def staging(component: str, version: str) -> Iterator[Path]:
    tmp_root = cache_dir() / ".tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    d = Path(tempfile.mkdtemp(prefix=f"{component}-{version}-", dir=tmp_root))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all: beside it, synced, then renamed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def install(
    component: str,
    version: str,
    binaries: dict[str, Installed],
    run: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Move ``binaries`` (same filesystem) into the component's directory and record them in
    its stamp, which keeps the binaries installed earlier; ``run`` (what was built, how long
    it took) is appended to the stamp's ``runs``. The new stamp."""
    final = component_dir(component, version)
    final.mkdir(parents=True, exist_ok=True)
    stamp = read_stamp(component, version) or {}
    entries: dict[str, Any] = dict(stamp.get("binaries") or {})
    now = datetime.now(UTC).isoformat(timespec="seconds")
    for name, b in binaries.items():
        digest = sha256_of(b.path)
        b.path.chmod(0o755)
        os.replace(b.path, final / name)
        entries[name] = {
            "sha256": digest,
            "source": b.source,
            "origin": b.origin,
            "seconds": round(b.seconds, 1),
            "cold": b.cold,
            "installed": now,
        }
    new = {
        "component": component,
        "version": version,
        "source": "+".join(sorted({str(e["source"]) for e in entries.values()})),
        "binaries": dict(sorted(entries.items())),
        "runs": [*(stamp.get("runs") or []), *([{**run, "finished": now}] if run else [])],
    }
    write_atomic(final / STAMP, json.dumps(new, indent=2) + "\n")
    return new
