"""Parse what the kernel prints about conntrack (pure: text in, numbers out)."""

from __future__ import annotations

import re

from harness.errors import BadInput

# /proc/net/stat/nf_conntrack abbreviates some names that `conntrack -S` spells out.
_ALIASES = {"clashres": "clash_resolve"}
# Columns that are not per-CPU counters: the same global value is printed on every line.
_GLOBAL = frozenset({"entries"})
_TABLE_FULL = re.compile(r"nf_conntrack: table full(?: in netns (\d+))?, dropping packet")


def parse_stat(text: str) -> dict[str, int]:
    """Sum ``/proc/net/stat/nf_conntrack`` over CPUs, keyed by ``conntrack -S`` names.

    The first line names the columns (the set varies by kernel); each further line is one
    CPU's counters in hex. ``entries`` is global, so it is taken once, not summed.
    """
    lines = [ln.split() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        raise BadInput("empty conntrack statistics", field="/proc/net/stat/nf_conntrack")
    header = [_ALIASES.get(h, h) for h in lines[0]]
    totals = dict.fromkeys(header, 0)
    for row_no, row in enumerate(lines[1:], start=1):
        if len(row) != len(header):
            raise BadInput(
                f"line {row_no + 1} has {len(row)} columns, header has {len(header)}",
                field="/proc/net/stat/nf_conntrack",
                value=" ".join(row),
            )
        for name, cell in zip(header, row, strict=True):
            try:
                value = int(cell, 16)
            except ValueError:
                raise BadInput(
                    "not a hex counter", field=f"/proc/net/stat/nf_conntrack:{name}", value=cell
                ) from None
            if name in _GLOBAL:
                if row_no == 1:
                    totals[name] = value
            else:
                totals[name] += value
    return totals


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
