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


def kernel_default_table(mem_total_bytes: int) -> int:
    """The table size this kernel picks at boot, both nf_conntrack_buckets and
    nf_conntrack_max (nf_conntrack_core.c, ``nf_conntrack_init_start``, 64-bit, no
    ``hashsize=`` given): 262,144 above 4 GiB of RAM, 65,536 above 1 GiB, else RAM / 16 KiB
    / 8 bytes, at least 1,024; max = buckets (max factor 1: two hash entries per entry)."""
    gib = 1 << 30
    if mem_total_bytes > 4 * gib:
        return 262144
    if mem_total_bytes > gib:
        return 65536
    return max(1024, mem_total_bytes // 16384 // 8)


def max_refusal(value: int, live: int) -> str | None:
    """Why ``value`` is too small a global table for a host that uses ``live`` entries itself
    (None: it leaves room)."""
    if value < live + MAX_MARGIN:
        return (
            f"nf_conntrack_max={value} is below the host's live count {live} + {MAX_MARGIN}; "
            "that would drop the machine's own traffic"
        )
    return None


# /proc/net/stat/nf_conntrack abbreviates some names that `conntrack -S` spells out.
STAT_ALIASES = {"clashres": "clash_resolve"}
# Columns that are not per-CPU counters: the namespace's value, printed on every line.
STAT_GLOBAL = frozenset({"entries"})
STAT_FILE = "/proc/net/stat/nf_conntrack"


def parse_stat(text: str) -> dict[str, int]:
    """Sum ``/proc/net/stat/nf_conntrack`` over CPUs, keyed by ``conntrack -S`` names.

    The first line names the columns (the set and the order vary by kernel); each further line
    is one CPU's counters in hex. ``entries`` is the namespace's table size, taken once. Text
    of any other shape raises ValueError (callers say whose fault it is: bad input, a node's
    odd output).
    """
    lines = [ln.split() for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"{STAT_FILE}: empty")
    header = [STAT_ALIASES.get(h, h) for h in lines[0]]
    totals = dict.fromkeys(header, 0)
    for row_no, row in enumerate(lines[1:], start=2):
        if len(row) != len(header):
            raise ValueError(
                f"{STAT_FILE}: line {row_no} has {len(row)} columns, the header {len(header)}"
            )
        for name, cell in zip(header, row, strict=True):
            try:
                value = int(cell, 16)
            except ValueError:
                raise ValueError(f"{STAT_FILE}: {name}={cell!r} is not a hex counter") from None
            if name not in STAT_GLOBAL:
                totals[name] += value
            elif row_no == 2:
                totals[name] = value
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
