"""Locust's aggregated stats turned into a plain, typed dict (what ``run`` prints as JSON).

Pure and Locust-free: it reads the serialized form of Locust's total ``StatsEntry``
(``num_requests``, ``num_failures``, ``response_times`` as {rounded ms: count},
``num_reqs_per_sec`` / ``num_fail_per_sec`` as {epoch second: count}, ``max_response_time``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

from cthcommon.loadresult import HTTPResult, LatencyMs


class WorkerStats(TypedDict):
    worker: str
    requests: int
    new_connections: int


class LocustStats(TypedDict):
    user: str
    workers: int
    requests: int
    failures: int
    failure_rate: float
    new_connections: int
    elapsed_s: float
    rps: float
    connections_per_s: float
    latency_ms: LatencyMs
    errors: dict[str, int]
    timeline: list[list[int]]  # [t_s, requests, failures, new_connections]
    per_worker: list[WorkerStats]


def histogram_percentile(counts: Mapping[float, int], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a {value: count} histogram; 0 if empty."""
    total = sum(counts.values())
    if total <= 0:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * total))
    seen = 0
    for value in sorted(counts):
        seen += counts[value]
        if seen >= rank:
            return float(value)
    return float(max(counts))


def _int_keys(d: Mapping[Any, Any]) -> dict[int, int]:
    return {int(float(k)): int(v) for k, v in d.items()}


def timeline(
    reqs_per_s: Mapping[int, int],
    fails_per_s: Mapping[int, int],
    conns_per_s: Mapping[int, int],
    start_s: int | None = None,
) -> list[list[int]]:
    """Rows ``[t, requests, failures, new_connections]`` for every second from the start."""
    seconds = set(reqs_per_s) | set(fails_per_s) | set(conns_per_s)
    if not seconds:
        return []
    first = min(seconds) if start_s is None else start_s
    last = max(seconds)
    return [
        [s - first, reqs_per_s.get(s, 0), fails_per_s.get(s, 0), conns_per_s.get(s, 0)]
        for s in range(first, last + 1)
    ]


def merge_counts(pairs: Iterable[Iterable[int]]) -> dict[int, int]:
    """Sum ``[second, count]`` pairs (as workers report them) into {second: count}."""
    out: dict[int, int] = {}
    for pair in pairs:
        sec, count = pair
        out[int(sec)] = out.get(int(sec), 0) + int(count)
    return out


def from_locust(
    total: Mapping[str, Any],
    *,
    user: str,
    workers: int,
    elapsed_s: float,
    new_connections: int,
    conns_per_s: Mapping[int, int],
    errors: Mapping[str, Mapping[str, Any]] | None = None,
    per_worker: list[WorkerStats] | None = None,
) -> LocustStats:
    """Build the result from Locust's serialized total entry and our connection counts.

    ``errors`` is ``RequestStats.serialize_errors()``: {key: {"error": str, "occurrences": n}}.
    """
    requests = int(total.get("num_requests", 0))
    failures = int(total.get("num_failures", 0))
    # Locust counts a failure as a request too (num_requests includes failures).
    hist = {float(k): int(v) for k, v in dict(total.get("response_times") or {}).items()}
    latency = LatencyMs(
        p50=histogram_percentile(hist, 50),
        p90=histogram_percentile(hist, 90),
        p99=histogram_percentile(hist, 99),
        max=float(total.get("max_response_time") or 0.0),
    )
    err: dict[str, int] = {}
    for e in (errors or {}).values():
        key = str(e.get("error", "?"))
        err[key] = err.get(key, 0) + int(e.get("occurrences", 0))
    reqs = _int_keys(total.get("num_reqs_per_sec") or {})
    fails = _int_keys(total.get("num_fail_per_sec") or {})
    start = total.get("start_time")
    start_s = int(start) if start else None
    if start_s is not None:
        start_s = min([start_s, *reqs, *fails, *conns_per_s])
    return LocustStats(
        user=user,
        workers=workers,
        requests=requests,
        failures=failures,
        failure_rate=failures / requests if requests else 0.0,
        new_connections=new_connections,
        elapsed_s=elapsed_s,
        rps=requests / elapsed_s if elapsed_s > 0 else 0.0,
        connections_per_s=new_connections / elapsed_s if elapsed_s > 0 else 0.0,
        latency_ms=latency,
        errors=err,
        timeline=timeline(reqs, fails, conns_per_s, start_s),
        per_worker=per_worker or [],
    )


def to_http_result(stats: LocustStats) -> HTTPResult:
    """The ``phases[].http`` section of result.json."""
    return HTTPResult(
        mode=stats["user"],
        requests=stats["requests"],
        failures=stats["failures"],
        failure_rate=stats["failure_rate"],
        new_connections=stats["new_connections"],
    )
