"""A locustfile run's stats as a plain, typed dict: totals, each endpoint, failures by error.

Pure and Locust-free. Reads the serialized form of Locust's ``StatsEntry`` (``name``,
``method``, ``num_requests`` (failures included), ``num_failures``, ``response_times`` as
{rounded ms: count}, ``max_response_time``) and ``RequestStats.serialize_errors()``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

from cthcommon.loadresult import LatencyMs, LocustEndpointResult, LocustErrorResult
from loadgen.locust.stats import WorkerStats, histogram_percentile

# one endpoint's and one error's row: the same in the worker's output and in result.json
LocustEndpoint = LocustEndpointResult
LocustError = LocustErrorResult


class LocustfileStats(TypedDict):
    locustfile: str
    user_classes: list[str]
    users: int
    workers: int
    requests: int
    failures: int
    failure_rate: float
    rps: float
    elapsed_s: float
    new_connections: int  # TCP connects the users' clients made (measured, every worker)
    latency_ms: LatencyMs
    endpoints: list[LocustEndpoint]
    errors: list[LocustError]
    per_worker: list[WorkerStats]


def latency(entry: Mapping[str, Any]) -> LatencyMs:
    hist = {float(k): int(v) for k, v in dict(entry.get("response_times") or {}).items()}
    return LatencyMs(
        p50=histogram_percentile(hist, 50),
        p90=histogram_percentile(hist, 90),
        p99=histogram_percentile(hist, 99),
        max=float(entry.get("max_response_time") or 0.0),
    )


def endpoint(entry: Mapping[str, Any], elapsed_s: float) -> LocustEndpoint:
    requests = int(entry.get("num_requests", 0))
    return LocustEndpoint(
        method=str(entry.get("method") or ""),
        name=str(entry.get("name") or ""),
        requests=requests,
        failures=int(entry.get("num_failures", 0)),
        rps=round(requests / elapsed_s, 3) if elapsed_s > 0 else 0.0,
        latency_ms=latency(entry),
    )


# What makes one error's text differ from request to request: urllib3 names the request's
# URL ("... with url: /product/17 (Caused by ...)") and the connection object's address
# ("<HTTPConnection(host=..., port=80) at 0x7efe50f00a90>"). Without them, the errors of one
# grouped endpoint (name="/product/[id]") are one error.
_VARYING = ((re.compile(r"with url: \S+"), "with url: <url>"), (re.compile(r" at 0x[0-9a-f]+"), ""))
MAX_ERRORS = 20


def errors(serialized: Mapping[str, Mapping[str, Any]]) -> list[LocustError]:
    """Failures by error, most frequent first; at most ``MAX_ERRORS`` rows, the rest summed
    into one, so the occurrences still add up to the failures."""
    merged: dict[tuple[str, str, str], int] = {}
    for e in serialized.values():
        text = str(e.get("error") or "?")
        for pattern, replacement in _VARYING:
            text = pattern.sub(replacement, text)
        key = (str(e.get("method") or ""), str(e.get("name") or ""), text)
        merged[key] = merged.get(key, 0) + int(e.get("occurrences", 0))
    rows = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))
    out = [LocustError(method=m, name=n, error=t, occurrences=c) for (m, n, t), c in rows]
    if len(out) > MAX_ERRORS:
        rest = out[MAX_ERRORS - 1 :]
        out = out[: MAX_ERRORS - 1]
        out.append(
            LocustError(
                method="",
                name="",
                error=f"({len(rest)} other errors)",
                occurrences=sum(e["occurrences"] for e in rest),
            )
        )
    return out


def locustfile_stats(
    *,
    locustfile: str,
    user_classes: Iterable[str],
    users: int,
    workers: int,
    total: Mapping[str, Any],
    entries: Iterable[Mapping[str, Any]],
    serialized_errors: Mapping[str, Mapping[str, Any]],
    elapsed_s: float,
    new_connections: int,
    per_worker: list[WorkerStats] | None = None,
) -> LocustfileStats:
    requests = int(total.get("num_requests", 0))
    failures = int(total.get("num_failures", 0))
    eps = sorted((endpoint(e, elapsed_s) for e in entries), key=lambda e: (e["name"], e["method"]))
    return LocustfileStats(
        locustfile=locustfile,
        user_classes=sorted(user_classes),
        users=users,
        workers=workers,
        requests=requests,
        failures=failures,
        failure_rate=failures / requests if requests else 0.0,
        rps=round(requests / elapsed_s, 3) if elapsed_s > 0 else 0.0,
        elapsed_s=round(elapsed_s, 3),
        new_connections=new_connections,
        latency_ms=latency(total),
        endpoints=eps,
        errors=errors(serialized_errors),
        per_worker=per_worker or [],
    )
