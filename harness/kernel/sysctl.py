"""The one way the harness changes sysctls: journaled, scoped, restored on every exit path.

``nf_conntrack_max`` (and ``nf_conntrack_buckets``) are global: writable only in the initial
namespace, and every namespace's own count is limited by it. The conntrack timeouts are per
namespace. Either way, the original value is journaled on disk before the first change, and
restored when the scope that changed it ends.

A namespace is an ``ip netns`` name or a path (``/proc/PID/ns/net``, see
:mod:`cthcommon.netns`). For a path the guard keeps the namespace's inode (in the journal
too), and puts a value back only into that same namespace: one that is gone (a kind node
container deleted, its PID reused) took its sysctls with it and is skipped quietly, while a
host value that cannot be put back is a restore failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from cthcommon.errors import RestoreFailed, UnsafeRequest
from cthcommon.netns import inode as netns_inode
from cthcommon.netns import is_path, open_in
from harness.kernel.journal import Journal

HOST_ONLY = frozenset({"net.netfilter.nf_conntrack_max", "net.netfilter.nf_conntrack_buckets"})


def sysctl_path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def read(key: str, netns: str | None = None, *, inode: int | None = None) -> str:
    """``key``'s value on the host (``netns`` None) or in a namespace (``inode``: only if it
    is still that namespace, see :func:`cthcommon.netns.entered`)."""
    path = sysctl_path(key)
    if netns is None:
        with open(path) as f:
            return f.read().strip()
    fd = open_in(netns, path, inode=inode)
    try:
        return os.pread(fd, 4096, 0).decode().strip()
    finally:
        os.close(fd)


def mem_total_bytes(meminfo: str = "/proc/meminfo") -> int:
    """This machine's RAM as the kernel counts it (MemTotal)."""
    with open(meminfo) as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def write(key: str, value: str, netns: str | None = None, *, inode: int | None = None) -> None:
    path = sysctl_path(key)
    if netns is None:
        with open(path, "w") as f:
            f.write(value)
        return
    fd = open_in(netns, path, os.O_WRONLY, inode=inode)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


@dataclass
class SysctlGuard:
    """Changes sysctls through a journal; ``scope()`` reverts what was changed inside it."""

    journal: Journal
    # (namespace, key, original, the namespace's inode when it is named by a path)
    _stack: list[tuple[str | None, str, str, int | None]] = field(default_factory=list)
    _journaled: set[tuple[str | None, str, int | None]] = field(default_factory=set)

    def set(self, key: str, value: int | str, netns: str | None = None) -> None:
        if key in HOST_ONLY and netns is not None:
            raise UnsafeRequest(f"{key} is global: set it on the host (netns=None)", field=key)
        new = str(value)
        ino = netns_inode(netns) if netns is not None and is_path(netns) else None
        old = read(key, netns, inode=ino)
        if (netns, key, ino) not in self._journaled:
            # journal before the change: a kill right after the write is still restorable
            extra = {"ino": ino} if ino is not None else {}
            self.journal.record("sysctl", key=key, netns=netns, original=old, **extra)
            self._journaled.add((netns, key, ino))
        self._stack.append((netns, key, old, ino))
        if old != new:
            write(key, new, netns, inode=ino)

    def _undo_to(self, mark: int) -> None:
        errors: list[str] = []
        while len(self._stack) > mark:
            netns, key, old, ino = self._stack.pop()
            try:
                if read(key, netns, inode=ino) != old:
                    write(key, old, netns, inode=ino)
            except FileNotFoundError:
                if netns is None:  # a namespace that is gone took its sysctls with it
                    errors.append(f"{key}: missing")
            except OSError as e:
                errors.append(f"{key}{f' in {netns}' if netns else ''}: {e}")
        if errors:
            raise RestoreFailed("could not restore sysctls: " + "; ".join(errors))

    @contextmanager
    def scope(self) -> Iterator[SysctlGuard]:
        mark = len(self._stack)
        try:
            yield self
        finally:
            self._undo_to(mark)

    def restore_all(self) -> None:
        self._undo_to(0)
