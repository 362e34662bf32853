"""The kernel log lines a run caused.

The one that matters: 'nf_conntrack: table full in netns <inode>, dropping packet'.
"""

from __future__ import annotations

import errno
import os
import re

TABLE_FULL = re.compile(r"nf_conntrack: table full(?: in netns (\d+))?, dropping packet")


def table_full_lines(lines: list[str], inodes: set[int]) -> list[str]:
    """The 'table full' lines that name one of ``inodes`` (lines without a netns are the
    host's own and are kept only when ``0`` is in ``inodes``)."""
    out = []
    for line in lines:
        m = TABLE_FULL.search(line)
        if not m:
            continue
        ino = int(m.group(1)) if m.group(1) else 0
        if ino in inodes:
            out.append(line)
    return out


class KmsgReader:
    """Reads /dev/kmsg records written after it was opened (non-blocking)."""

    def __init__(self) -> None:
        self._fd: int | None = None
        try:
            self._fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
            os.lseek(self._fd, 0, os.SEEK_END)
        except OSError:
            self._fd = None

    @property
    def available(self) -> bool:
        return self._fd is not None

    def read_new(self) -> list[str]:
        if self._fd is None:
            return []
        out: list[str] = []
        while True:
            try:
                rec = os.read(self._fd, 8192)
            except OSError as e:
                if e.errno == errno.EAGAIN:
                    break
                if e.errno == errno.EPIPE:  # overwritten records: skip ahead
                    continue
                raise
            if not rec:
                break
            text = rec.decode(errors="replace")
            # "<prio>,<seq>,<usec>,<flags>;<message>"
            head, _, msg = text.partition(";")
            usec = head.split(",")[2] if head.count(",") >= 2 else "0"
            out.append(f"[{int(usec) / 1e6:12.6f}] {msg.splitlines()[0] if msg else ''}")
        return out

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
