"""Splitting the HTTP load over worker processes, and merging their results (pure)."""

from __future__ import annotations

from loadgen.http.plan import HTTPLoadResult, HTTPPlan, HTTPTarget, TimelineRow, latency_summary
from loadgen.http.workers import merge, split


def _result(requests: int, lat: list[float], rows: list[tuple[int, int]]) -> HTTPLoadResult:
    return HTTPLoadResult(
        mode="short-lived",
        requests=requests,
        failures=1,
        new_connections=requests,
        connect_failures=1,
        elapsed_s=5.0 + requests / 1000,
        latency_ms=latency_summary(lat),
        latencies_ms=lat,
        errors={"timeout": 1},
        timeline=[TimelineRow(t_s=t, requests=r, failures=0, new_connections=r) for t, r in rows],
        fill_s=1.0,
    )


def test_split_gives_each_worker_its_targets_and_a_share_of_every_budget() -> None:
    targets = [HTTPTarget("10.96.0.20", netns=f"ns{i}") for i in range(5)]
    plan = HTTPPlan(rate=900, pool_size=8, max_in_flight=120, fill_connections=4000)
    shares = split(targets, plan, 2)
    assert [len(t) for t, _ in shares] == [3, 2]
    assert {t.netns for ts, _ in shares for t in ts} == {f"ns{i}" for i in range(5)}
    assert sum(p.rate for _, p in shares) == plan.rate
    assert sum(p.fill_connections for _, p in shares) == plan.fill_connections
    assert all(p.max_in_flight == 60 for _, p in shares)
    # never more workers than targets
    assert len(split(targets[:1], plan, 4)) == 1


def test_merge_adds_counts_and_timelines_and_recomputes_latency() -> None:
    a = _result(100, [1.0, 2.0, 3.0], [(0, 60), (1, 40)])
    b = _result(50, [10.0], [(1, 30), (2, 20)])
    m = merge([a, b])
    assert (m.requests, m.failures, m.connect_failures) == (150, 2, 2)
    assert m.errors == {"timeout": 2}
    assert [(r["t_s"], r["requests"]) for r in m.timeline] == [(0, 60), (1, 70), (2, 20)]
    assert m.latency_ms["max"] == 10.0
    assert m.elapsed_s == max(a.elapsed_s, b.elapsed_s)
