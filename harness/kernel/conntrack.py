"""Parse the kernel's conntrack views (pure): /proc/net/stat/nf_conntrack and `conntrack -L`."""

from __future__ import annotations

import re
from collections import Counter

# What the harness will write into the kernel's global table settings. The kernel takes an int
# for nf_conntrack_max, but every bucket is allocated up front (8 bytes each) and 'auto' makes
# max / 4 of them: 2**26 entries (16M buckets, 128 MiB) is far beyond any node's real table.
CONNTRACK_MAX_MIN = 64
CONNTRACK_MAX_MAX = 1 << 26
BUCKETS_MIN = 1
BUCKETS_MAX = 1 << 24
# room left above the host's own live entries when the global table is shrunk
MAX_MARGIN = 1024


def max_refusal(value: int, live: int) -> str | None:
    """Why ``value`` is too small a global table for a host that uses ``live`` entries itself
    (None: it leaves room)."""
    if value < live + MAX_MARGIN:
        return (
            f"nf_conntrack_max={value} is below the host's live count {live} + {MAX_MARGIN}; "
            "that would drop the machine's own traffic"
        )
    return None


# Columns present in /proc/net/stat/nf_conntrack vary by kernel; the header names them.
STAT_FIELDS = (
    "found",
    "invalid",
    "insert",
    "insert_failed",
    "drop",
    "early_drop",
    "clashres",
    "search_restart",
    "icmp_error",
)


def parse_stat(text: str) -> dict[str, int]:
    """Sum the per-CPU hex counters. ``entries`` is the namespace's count (same on each line)."""
    lines = [ln.split() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return {}
    header, rows = lines[0], lines[1:]
    totals: dict[str, int] = {}
    for row in rows:
        for name, value in zip(header, row, strict=False):
            n = int(value, 16)
            if name == "entries":
                totals["entries"] = n
            else:
                totals[name] = totals.get(name, 0) + n
    # the name `conntrack -S` prints
    if "clashres" in totals:
        totals["clash_resolve"] = totals["clashres"]
    return totals


def stat_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after if k != "entries"}


_STATE = re.compile(r"^(tcp|udp|icmp|\w+)\s+\d+\s+\d+\s+([A-Z_]+)?")


def state_histogram(listing: str) -> dict[str, int]:
    """Count entries by state: TCP by its state (TIME_WAIT, CLOSE, ...), UDP as
    UDP_UNREPLIED / UDP_ASSURED / UDP."""
    hist: Counter[str] = Counter()
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) < 3 or parts[0].startswith("conntrack"):
            continue
        proto = parts[0]
        if proto == "tcp" and len(parts) > 3 and parts[3].isupper():
            hist[parts[3]] += 1
        elif proto == "udp":
            if "[UNREPLIED]" in line:
                hist["UDP_UNREPLIED"] += 1
            elif "[ASSURED]" in line:
                hist["UDP_ASSURED"] += 1
            else:
                hist["UDP"] += 1
        else:
            hist[proto.upper()] += 1
    return dict(hist)


def count_dns_entries(listing: str, src_prefix: str = "") -> int:
    """Entries for DNS (port 53) flows, optionally only those whose original source starts
    with ``src_prefix`` (e.g. the pod CIDR's "10.244.")."""
    n = 0
    for ln in listing.splitlines():
        m = re.search(r"src=(\S+) dst=\S+ sport=\d+ dport=53\b", ln)
        if m and m.group(1).startswith(src_prefix):
            n += 1
    return n
