"""Timeout accounting: lookup records in, the ``dns`` block of ``result.json`` out. Pure.

Definitions (the keys of :class:`harness.results.schema.DNSResult`, less ``timeout_rate_ci``, which
the statistics layer adds):

- ``timeouts``: lookups that failed for want of a reply (outcome ``timeout`` or
  ``unfinished``) or that took at least ``timeout_s``; ``timeout_rate`` = timeouts/lookups.
  glibc, Go and the sequential client wait a whole ``timeout`` before a resend, so any wait
  makes a timeout; musl resends every ``timeout / attempts`` (2.5 s by default), and a lookup
  answered after such a wait is ``waited``, not a timeout.
- ``waited``: lookups that waited for at least one resend (``full_timeout_waits >= 1``),
  timeouts or not; ``waited_rate`` = waited/lookups.
- ``by_resolver``: ``{model: {lookups, waited, timeouts}}``.
- ``latency_sum_s``: every lookup's latency added up (a Prometheus histogram's ``_sum``).
- ``failed``: lookups that ended with no answer at all (outcome ``timeout`` or ``error``);
  NXDOMAIN and NODATA are answers.
- ``unfinished``: lookups given up at the end of the run after they had waited one full
  timeout (outcome ``unfinished``; counted in ``timeouts``, not in ``failed``: how they would
  have ended was not observed).
- ``full_timeout_waits``: all waits for a resend summed; ``full_timeout_rate`` = waits per
  lookup.
- ``queries_unanswered``: queries sent that never got a matching reply.
- ``latency_ms``: nearest-rank percentiles of the lookup latency.
- ``timeline``: ``[second, lookups started, timeouts among them]`` for every second of the run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from loadgen.dns.types import LookupRecord

FAILED_OUTCOMES = frozenset({"timeout", "error"})


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100) of an ascending sequence; 0.0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


# A lookup that ended like this got no reply in time: a timeout however long it took.
NO_REPLY_OUTCOMES = frozenset({"timeout", "unfinished"})


def is_timeout(rec: LookupRecord, timeout_s: float) -> bool:
    """Failed for want of a reply, or waited at least the resolver's ``timeout``."""
    return rec.outcome in NO_REPLY_OUTCOMES or rec.latency_s >= timeout_s


def waited(rec: LookupRecord) -> bool:
    """Waited for at least one resend (a retransmit timer ran out), timeout or not."""
    return rec.full_timeout_waits > 0


def summarize(records: Sequence[LookupRecord], timeout_s: float) -> dict[str, Any]:
    n = len(records)
    timeouts = [is_timeout(r, timeout_s) for r in records]
    n_timeouts = sum(timeouts)
    failed = sum(1 for r in records if r.outcome in FAILED_OUTCOMES)
    n_unfinished = sum(1 for r in records if r.outcome == "unfinished")
    waits = sum(r.full_timeout_waits for r in records)
    sent = sum(r.queries_sent for r in records)
    unanswered = sum(
        sum(1 for a in r.attempts if a.latency_s is None)
        if r.attempts
        else max(0, r.queries_sent - r.replies_received)
        for r in records
    )
    lat = sorted(r.latency_s * 1000.0 for r in records)
    timeline: list[list[float]] = []
    if records:
        last = max(int(r.t_start) for r in records)
        buckets = [[float(s), 0.0, 0.0] for s in range(max(0, last) + 1)]
        for r, to in zip(records, timeouts, strict=True):
            b = buckets[max(0, int(r.t_start))]
            b[1] += 1
            b[2] += 1 if to else 0
        timeline = buckets
    resolvers = sorted({r.resolver for r in records if r.resolver})
    n_waited = sum(1 for r in records if waited(r))
    by_resolver: dict[str, dict[str, int]] = {}
    for r, to in zip(records, timeouts, strict=True):
        d = by_resolver.setdefault(r.resolver or "?", {"lookups": 0, "waited": 0, "timeouts": 0})
        d["lookups"] += 1
        d["waited"] += waited(r)
        d["timeouts"] += to
    return {
        "lookups": n,
        "timeouts": n_timeouts,
        "timeout_rate": n_timeouts / n if n else 0.0,
        "failed": failed,
        "failed_rate": failed / n if n else 0.0,
        "unfinished": n_unfinished,
        "full_timeout_waits": waits,
        "full_timeout_rate": waits / n if n else 0.0,
        "queries_sent": sent,
        "queries_unanswered": unanswered,
        "queries_per_lookup": sent / n if n else 0.0,
        "latency_ms": {
            "p50": percentile(lat, 50),
            "p90": percentile(lat, 90),
            "p99": percentile(lat, 99),
            "max": lat[-1] if lat else 0.0,
        },
        "resolver": ",".join(resolvers),
        "timeline": timeline,
        "waited": n_waited,
        "waited_rate": n_waited / n if n else 0.0,
        "by_resolver": by_resolver,
        "latency_sum_s": round(sum(r.latency_s for r in records), 6),
    }
