"""Parse what the kernel prints about conntrack (pure: text in, numbers out)."""

from __future__ import annotations

import re

from cthcommon.errors import BadInput
from harness.kernel import conntrack

_TABLE_FULL = re.compile(r"nf_conntrack: table full(?: in netns (\d+))?, dropping packet")


def parse_stat(text: str) -> dict[str, int]:
    """:func:`harness.kernel.conntrack.parse_stat`, with odd text as bad input."""
    try:
        return conntrack.parse_stat(text)
    except ValueError as e:
        raise BadInput(str(e), field=conntrack.STAT_FILE) from None


_STAMP = re.compile(r"^\[\s*(\d+(?:\.\d+)?)\]")


def dmesg_seconds(line: str) -> float | None:
    """A dmesg line's ``[ 1234.567]`` stamp (seconds since boot), or None without one."""
    m = _STAMP.match(line)
    return float(m.group(1)) if m else None


def table_full_lines(
    dmesg: str,
    netns_inode: int | None = None,
    *,
    initial_only: bool = False,
    since_s: float | None = None,
) -> list[str]:
    """The kernel's "table full, dropping packet" lines; only one namespace's when given.

    The kernel names a child namespace by inode (``table full in netns 4026532...``); lines
    without an inode come from the initial namespace (``initial_only``: only those). With
    ``since_s`` (seconds since boot), lines stamped earlier are left out; unstamped lines
    are kept (their time is unknown).
    """
    out = []
    for line in dmesg.splitlines():
        m = _TABLE_FULL.search(line)
        if not m:
            continue
        if netns_inode is not None and (m.group(1) is None or int(m.group(1)) != netns_inode):
            continue
        if initial_only and m.group(1) is not None:
            continue
        stamp = dmesg_seconds(line)
        if since_s is not None and stamp is not None and stamp < since_s:
            continue
        out.append(line.rstrip())
    return out
