"""The ``phases[].locust`` section of result.json: what a locustfile load measured.

Next to the raw client's ``http`` section (a phase has one or the other). Built from the load
worker's ``locust`` output (:class:`loadgen.locust.endpoints.LocustfileStats`): totals, each
endpoint's requests/failures/rps/latency percentiles, and failures by error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from cthcommon.loadresult import LatencyMs, LocustEndpointResult, LocustErrorResult


class LocustResult(TypedDict):
    locustfile: str
    user_classes: list[str]
    users: int
    workers: int
    requests: int  # failures included, as Locust counts them
    failures: int
    failure_rate: float
    rps: float
    new_connections: int
    latency_ms: LatencyMs
    endpoints: list[LocustEndpointResult]
    errors: list[LocustErrorResult]


def _latency(d: Mapping[str, Any]) -> LatencyMs:
    return LatencyMs(
        p50=float(d["p50"]), p90=float(d["p90"]), p99=float(d["p99"]), max=float(d["max"])
    )


def locust_result(raw: Mapping[str, Any]) -> LocustResult:
    """The section, from the worker's ``locust`` output (read back from its JSON)."""
    return LocustResult(
        locustfile=str(raw["locustfile"]),
        user_classes=[str(c) for c in raw["user_classes"]],
        users=int(raw["users"]),
        workers=int(raw["workers"]),
        requests=int(raw["requests"]),
        failures=int(raw["failures"]),
        failure_rate=float(raw["failure_rate"]),
        rps=float(raw["rps"]),
        new_connections=int(raw["new_connections"]),
        latency_ms=_latency(raw["latency_ms"]),
        endpoints=[
            LocustEndpointResult(
                method=str(e["method"]),
                name=str(e["name"]),
                requests=int(e["requests"]),
                failures=int(e["failures"]),
                rps=float(e["rps"]),
                latency_ms=_latency(e["latency_ms"]),
            )
            for e in raw["endpoints"]
        ],
        errors=[
            LocustErrorResult(
                method=str(e["method"]),
                name=str(e["name"]),
                error=str(e["error"]),
                occurrences=int(e["occurrences"]),
            )
            for e in raw["errors"]
        ],
    )
