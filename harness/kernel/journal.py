"""The on-disk run journal and the host lock.

Every host change is journaled *before* it is made, one JSON line per change, fsync'd. A run
that ends normally undoes its changes and deletes its journal. A run that was killed leaves its
journal behind; ``conntrack-harness restore`` (and the next run, before it starts) replays it
in reverse. Undo steps are idempotent, so replaying a journal twice is harmless.

The lock is an ``flock`` on a file: the kernel drops it when its holder dies, so a stale lock
cannot outlive its process. The holder's PID is written into the file for messages.

Journals live in the state directory, which a run may move (``CONNTRACK_HARNESS_STATE_DIR``).
What they undo is host-global, though (``nf_conntrack_max``, namespaces), so every live journal
is also registered next to the lock: one file per run naming its journal. ``restore`` from any
state directory therefore finds a killed run's journal, wherever that run kept it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cthcommon.errors import LockHeld

STATE_DIR_ENV = "CONNTRACK_HARNESS_STATE_DIR"
DEFAULT_STATE_DIR = "/run/conntrack-harness"
# The lock guards host-global state (nf_conntrack_max, the namespace sweep), so it does not
# move with the state dir: two runs with different state dirs still exclude each other.
LOCK_ENV = "CONNTRACK_HARNESS_LOCK"
DEFAULT_LOCK = "/run/conntrack-harness.lock"


def state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV, DEFAULT_STATE_DIR))


def lock_path() -> Path:
    return Path(os.environ.get(LOCK_ENV, DEFAULT_LOCK))


def registry_dir() -> Path:
    """Host-global index of live journals: ``<run id>`` files holding the journal's path."""
    lock = lock_path()
    return lock.with_name(lock.name + ".runs")


def process_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat).

    Together with the PID it identifies a process even after the PID is reused.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # comm (field 2) may contain spaces and parentheses: split after the last ')'
    rest = stat[stat.rindex(")") + 2 :].split()
    return int(rest[19])


def is_same_process(pid: int, start: int | None) -> bool:
    now = process_start_time(pid)
    return now is not None and (start is None or now == start)


@dataclass
class Journal:
    """Append-only record of one run's host changes."""

    path: Path
    run_id: str
    entries: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def create(cls, run_id: str, **meta: Any) -> Journal:
        d = state_dir() / "runs"
        d.mkdir(parents=True, exist_ok=True)
        j = cls(d / f"{run_id}.jsonl", run_id)
        j.record(
            "run",
            pid=os.getpid(),
            pid_start=process_start_time(os.getpid()),
            started=time.time(),
            **meta,
        )
        reg = registry_dir()
        reg.mkdir(parents=True, exist_ok=True)
        _write_synced(reg / run_id, str(j.path.resolve()))
        return j

    @classmethod
    def load(cls, path: Path) -> Journal:
        entries = []
        for line in path.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a torn last line from a kill mid-write
        run_id = path.stem
        return cls(path, run_id, entries)

    def record(self, op: str, **data: Any) -> None:
        entry = {"op": op, **data}
        line = json.dumps(entry, sort_keys=True) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self.entries.append(entry)

    @property
    def owner(self) -> tuple[int, int | None]:
        head = self.entries[0] if self.entries else {}
        return int(head.get("pid", 0)), head.get("pid_start")

    def owner_alive(self) -> bool:
        pid, start = self.owner
        return pid > 0 and is_same_process(pid, start)

    def close(self) -> None:
        """The run undid everything: its journal is no longer needed."""
        self.path.unlink(missing_ok=True)
        _unregister(self.run_id)


def _write_synced(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def _unregister(run_id: str) -> None:
    reg = registry_dir()
    (reg / run_id).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # only when no run is registered: nothing stays
        reg.rmdir()


def journal_paths() -> list[Path]:
    """Every journal this host knows: this state directory's, and those registered by runs
    that used another state directory. Registry entries whose journal is gone are dropped."""
    paths: dict[Path, None] = {}
    d = state_dir() / "runs"
    if d.is_dir():
        paths.update((p.resolve(), None) for p in sorted(d.glob("*.jsonl")))
    reg = registry_dir()
    if reg.is_dir():
        for entry in sorted(reg.iterdir()):
            try:
                target = Path(entry.read_text().strip())
            except OSError:
                continue
            if target.is_absolute() and target.is_file():
                paths.setdefault(target.resolve(), None)
            else:
                _unregister(entry.name)
    return list(paths)


def journals() -> Iterator[Journal]:
    """Every journal of :func:`journal_paths`, skipping one its run closed meanwhile."""
    for p in journal_paths():
        try:
            yield Journal.load(p)
        except FileNotFoundError:
            continue


def stale_journals() -> Iterator[Journal]:
    return (j for j in journals() if not j.owner_alive())


class HostLock:
    """One harness run at a time per host (nf_conntrack_max is global)."""

    def __init__(self, wait_s: float = 0.0) -> None:
        self.path = lock_path()
        self.wait_s = wait_s
        self._fd: int | None = None

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "unknown"
        except FileNotFoundError:
            return "unknown"

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise LockHeld(
                        f"another conntrack-harness run holds {self.path} (holder: "
                        f"{self.holder()}); wait for it, or pass --wait SECONDS"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> HostLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
