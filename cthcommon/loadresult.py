"""The result.json sections a load worker builds itself: latency summaries and histograms,
the raw HTTP client's ``http`` section, a locustfile load's endpoints and errors.

``harness.results`` assembles them into a phase's result (``harness.results.locust`` builds
the ``locust`` section from these).
"""

from typing import NotRequired, TypedDict


class LatencyMs(TypedDict):
    p50: float
    p90: float
    p99: float
    max: float


class LatencyHist(TypedDict):
    """Lookup latencies bucketed at ``edges_s``; ``counts`` has one more entry (the overflow)."""

    edges_s: list[float]
    counts: list[int]


class HTTPResult(TypedDict):
    mode: str
    requests: int
    failures: int
    failure_rate: float
    new_connections: int
    # per second of the load, all pods together: [second, requests, failures, new connections]
    # (whether the load ran at its planned rate throughout)
    timeline: NotRequired[list[list[int]]]


class LocustEndpointResult(TypedDict):
    method: str
    name: str
    requests: int
    failures: int
    rps: float
    latency_ms: LatencyMs


class LocustErrorResult(TypedDict):
    method: str
    name: str
    error: str
    occurrences: int
