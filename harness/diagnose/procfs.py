"""Parse what the kernel prints about conntrack (pure: text in, numbers out)."""

from __future__ import annotations

import re

from harness.errors import BadInput
from harness.kernel import conntrack

_TABLE_FULL = re.compile(r"nf_conntrack: table full(?: in netns (\d+))?, dropping packet")


def parse_stat(text: str) -> dict[str, int]:
    """:func:`harness.kernel.conntrack.parse_stat`, with odd text as bad input."""
    try:
        return conntrack.parse_stat(text)
    except ValueError as e:
        raise BadInput(str(e), field=conntrack.STAT_FILE) from None


def table_full_lines(dmesg: str, netns_inode: int | None = None) -> list[str]:
    """The kernel's "table full, dropping packet" lines; only one namespace's when given.

    The kernel names a child namespace by inode (``table full in netns 4026532...``); lines
    without an inode come from the initial namespace.
    """
    out = []
    for line in dmesg.splitlines():
        m = _TABLE_FULL.search(line)
        if not m:
            continue
        if netns_inode is not None and (m.group(1) is None or int(m.group(1)) != netns_inode):
            continue
        out.append(line.rstrip())
    return out
