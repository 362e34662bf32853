"""Parse a node's conntrack statistics as ``/proc/net/stat/nf_conntrack`` prints them.

The file has a header of field names, then one line of hexadecimal values per CPU. Every field
but ``entries`` is a per-CPU event count (summed here); ``entries`` is the namespace's current
table size and repeats on each line. Field sets differ between kernels, so fields are found by
name and a missing one reads as 0.
"""

from __future__ import annotations

import re
from typing import TypedDict

from harness.errors import BackendError


class NodeStat(TypedDict):
    entries: int
    count: int
    max: int
    drop: int
    early_drop: int
    insert_failed: int
    clash_resolve: int
    insert: int
    invalid: int


def parse_stat(text: str) -> dict[str, int]:
    lines = [ln.split() for ln in text.strip().splitlines() if ln.strip()]
    if not lines or lines[0][0] != "entries":
        raise BackendError("not /proc/net/stat/nf_conntrack output", text=text[:200])
    header = lines[0]
    totals = dict.fromkeys(header, 0)
    for row in lines[1:]:
        if len(row) != len(header):
            raise BackendError("a /proc/net/stat/nf_conntrack row has the wrong width", row=row)
        for name, hexval in zip(header, row, strict=True):
            value = int(hexval, 16)
            totals[name] = value if name == "entries" else totals[name] + value
    return totals


def parse_node_probe(text: str) -> NodeStat:
    """Output of ``cat /proc/net/stat/nf_conntrack nf_conntrack_count nf_conntrack_max``."""
    lines = text.strip().splitlines()
    if len(lines) < 4 or not lines[-1].strip().isdigit() or not lines[-2].strip().isdigit():
        raise BackendError("unexpected node counter output", text=text[:200])
    stats = parse_stat("\n".join(lines[:-2]))
    return {
        "entries": stats.get("entries", 0),
        "count": int(lines[-2]),
        "max": int(lines[-1]),
        "drop": stats.get("drop", 0),
        "early_drop": stats.get("early_drop", 0),
        "insert_failed": stats.get("insert_failed", 0),
        # the kernel's header abbreviates clash_resolve (conntrack -S's name) to "clashres"
        "clash_resolve": stats.get("clashres", stats.get("clash_resolve", 0)),
        "insert": stats.get("insert", 0),
        "invalid": stats.get("invalid", 0),
    }


_COUNTER = re.compile(r"counter packets (\d+) bytes (\d+)")


def nft_drop_count(listing: str) -> int:
    """Packets the injected race-window rule dropped (its ``counter``), from ``nft list table``."""
    hits = [int(m.group(1)) for m in _COUNTER.finditer(listing)]
    if not hits:
        raise BackendError("the fault table has no counter", text=listing[:200])
    return sum(hits)


_NS_LINK = re.compile(r"^net:\[(\d+)\]$")


def parse_netns_link(text: str) -> int | None:
    """``readlink /proc/self/ns/net`` output -> the namespace inode (None if not that shape)."""
    m = _NS_LINK.match(text.strip())
    return int(m.group(1)) if m else None
