"""Parse what a cluster node's probe prints: ``/proc/net/stat/nf_conntrack`` (by the one
parser, :func:`harness.kernel.conntrack.parse_stat`), then the count and the max; and the
injected fault's nft counter. Field sets differ between kernels, so fields are found by name
and a missing one reads as 0.
"""

from __future__ import annotations

import re
from typing import TypedDict

from cthcommon.errors import BackendError
from harness.kernel.conntrack import parse_stat


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


def parse_node_probe(text: str) -> NodeStat:
    """Output of ``cat /proc/net/stat/nf_conntrack nf_conntrack_count nf_conntrack_max``."""
    lines = text.strip().splitlines()
    if len(lines) < 4 or not lines[-1].strip().isdigit() or not lines[-2].strip().isdigit():
        raise BackendError("unexpected node counter output", text=text[:200])
    try:
        stats = parse_stat("\n".join(lines[:-2]))
    except ValueError as e:
        raise BackendError(f"unexpected node counter output: {e}", text=text[:200]) from None
    if "entries" not in stats:
        raise BackendError("unexpected node counter output: no 'entries' column", text=text[:200])
    return {
        "entries": stats.get("entries", 0),
        "count": int(lines[-2]),
        "max": int(lines[-1]),
        "drop": stats.get("drop", 0),
        "early_drop": stats.get("early_drop", 0),
        "insert_failed": stats.get("insert_failed", 0),
        "clash_resolve": stats.get("clash_resolve", 0),
        "insert": stats.get("insert", 0),
        "invalid": stats.get("invalid", 0),
    }


_NS_LINK = re.compile(r"^net:\[(\d+)\]$")


def parse_netns_link(text: str) -> int | None:
    """``readlink /proc/self/ns/net`` output -> the namespace inode (None if not that shape)."""
    m = _NS_LINK.match(text.strip())
    return int(m.group(1)) if m else None
