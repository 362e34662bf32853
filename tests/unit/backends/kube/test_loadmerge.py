"""Merging the client pods' worker answers into one phase's load (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.backends.kube.loadmerge import merge_loads


def pod(lookups: int, timeouts: int, queries: int, p99: float, hist: list[int]) -> dict[str, Any]:
    return {
        "dns": {
            "lookups": lookups,
            "timeouts": timeouts,
            "timeout_rate": timeouts / lookups,
            "queries_sent": queries,
            "queries_per_lookup": queries / lookups,
            "latency_ms": {"p50": 1.0, "p99": p99, "max": p99 + 1},
            "latency_hist": {"edges_s": [0.01, 1.0, 5.0], "counts": hist},
            "by_name": {"a": {"lookups": lookups, "queries": queries, "queries_per_lookup": 0.0}},
            "resolver": "glibc",
            "timeline": [[0, lookups, 0], [1, 0, timeouts]],
            "elapsed_s": 10.0 + timeouts,
        }
    }


def test_counts_add_and_ratios_are_recomputed() -> None:
    merged, notes = merge_loads(
        [pod(100, 10, 250, 5000.0, [90, 0, 10]), pod(300, 0, 600, 2.0, [300, 0, 0])]
    )
    d = merged["dns"]
    assert d["lookups"] == 400
    assert d["timeouts"] == 10
    assert d["timeout_rate"] == pytest.approx(10 / 400)
    assert d["queries_per_lookup"] == pytest.approx(850 / 400)
    assert d["by_name"]["a"]["queries_per_lookup"] == pytest.approx(850 / 400)
    assert d["latency_hist"] == {"edges_s": [0.01, 1.0, 5.0], "counts": [390, 0, 10]}
    assert d["timeline"] == [[0, 400, 0], [1, 0, 10]]
    assert d["elapsed_s"] == 20.0
    assert d["latency_ms"]["max"] == 5001.0
    assert d["latency_ms"]["p99"] == pytest.approx((100 * 5000.0 + 300 * 2.0) / 400, abs=1e-3)
    assert any("latency_ms" in n for n in notes)
    assert "http" not in merged


def test_one_pod_is_returned_as_it_is() -> None:
    one = pod(50, 5, 120, 5000.0, [45, 0, 5])
    merged, notes = merge_loads([one])
    assert merged["dns"]["latency_ms"] == one["dns"]["latency_ms"]
    assert merged["dns"]["timeout_rate"] == pytest.approx(one["dns"]["timeout_rate"])
    assert notes == []


def test_disagreeing_resolver_is_noted() -> None:
    a, b = pod(1, 0, 2, 1.0, [1, 0, 0]), pod(1, 0, 2, 1.0, [1, 0, 0])
    b["dns"]["resolver"] = "musl"
    _, notes = merge_loads([a, b])
    assert any("resolver differs" in n for n in notes)


def test_http_timelines_add_up_per_second_across_pods() -> None:
    """The HTTP client's rows say ``t_s``: each second's counts are the pods' sum (they used
    to fall into one row at t=0), and result.json gets them as [second, requests, failures,
    new connections]."""

    def pod(rows: list[tuple[int, int, int, int]]) -> dict[str, Any]:
        timeline = [
            {"t_s": t, "requests": r, "failures": f, "new_connections": c} for t, r, f, c in rows
        ]
        return {
            "http": {
                "mode": "short-lived",
                "requests": sum(r[1] for r in rows),
                "failures": sum(r[2] for r in rows),
                "new_connections": sum(r[3] for r in rows),
                "timeline": timeline,
            }
        }

    a = pod([(0, 200, 10, 200), (1, 190, 150, 200), (2, 0, 0, 0)])
    b = pod([(0, 180, 5, 200), (1, 210, 200, 200)])
    merged, _ = merge_loads([a, b])
    assert merged["http"]["timeline"] == [
        {"t_s": 0, "requests": 380, "failures": 15, "new_connections": 400},
        {"t_s": 1, "requests": 400, "failures": 350, "new_connections": 400},
        {"t_s": 2, "requests": 0, "failures": 0, "new_connections": 0},
    ]
