"""Parse the kernel's conntrack views (pure): /proc/net/stat/nf_conntrack and `conntrack -L`."""

from __future__ import annotations

import re
from collections import Counter

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


def count_dns_entries(listing: str, src_prefix: str | tuple[str, ...] = "") -> int:
    """Entries for DNS (port 53) flows, optionally only those whose original source starts
    with ``src_prefix`` (e.g. the pod CIDR's "10.244."), or with one of several. A full
    address matches only itself ("10.244.1.2" is not "10.244.1.20")."""
    wanted = (src_prefix,) if isinstance(src_prefix, str) else src_prefix
    n = 0
    for ln in listing.splitlines():
        m = re.search(r"src=(\S+) dst=\S+ sport=\d+ dport=53\b", ln)
        if m and any(_matches(m.group(1), w) for w in wanted):
            n += 1
    return n


def _matches(addr: str, want: str) -> bool:
    if want.count(".") == 3 and not want.endswith("."):
        return addr == want
    return addr.startswith(want)
