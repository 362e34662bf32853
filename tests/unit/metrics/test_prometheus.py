"""The exported registry (seed 000's ConntrackTableNearFull itself is
tests/unit/judge/test_alerts.py)."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

from cthcommon.errors import BadInput, UnsafeRequest
from harness.metrics.prometheus import HarnessMetrics
from tests.sample_results import exhaustion_run


def _value(text: str, series: str) -> float:
    """The sample value of one exact series (name plus labels) in exposition text."""
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == series:
            return float(value)
    raise AssertionError(f"{series} not in exposition")


def test_registry_from_result(tmp_path: Path) -> None:
    run = exhaustion_run()
    m = HarnessMetrics()
    m.load_result(run)
    text = m.text()
    last = run["phases"][-1]["conntrack"]["nodes"][0]
    assert _value(text, 'node_nf_conntrack_entries{node="node-1"}') == last["timeline"][-1][1]
    assert _value(text, 'node_nf_conntrack_entries_limit{node="node-1"}') == last["max"]
    base = run["phases"][0]
    assert (
        _value(text, 'conntrack_harness_dns_timeouts_total{phase="baseline",resolver="glibc"}')
        == base["dns"]["timeouts"]
    )
    assert (
        _value(
            text,
            'conntrack_harness_alert_fired{alertname="ConntrackTableNearFull",phase="baseline"}',
        )
        == 1
    )
    assert "node_nf_conntrack_stat_drop" in text
    out = m.write_textfile(tmp_path / "conntrack_harness.prom")
    assert out.read_text() == text
    with pytest.raises(BadInput, match="prom"):
        m.write_textfile(tmp_path / "x.txt")


def test_observe_lookup_histogram() -> None:
    m = HarnessMetrics()
    for s, bad in ((0.002, False), (5.004, True), (0.3, False)):
        m.observe_lookup("baseline", "glibc", s, timed_out=bad, failed=False)
    text = m.text()
    assert (
        _value(text, 'conntrack_harness_dns_lookups_total{phase="baseline",resolver="glibc"}') == 3
    )
    assert (
        _value(
            text, 'conntrack_harness_dns_lookup_duration_seconds_bucket{le="5.0",phase="baseline"}'
        )
        == 2
    )
    assert (
        _value(
            text, 'conntrack_harness_dns_lookup_duration_seconds_bucket{le="10.0",phase="baseline"}'
        )
        == 3
    )


def test_http_endpoint_on_loopback_only() -> None:
    with HarnessMetrics() as m:
        m.observe_conntrack("node-1", 1500, 2048, {"drop": 3, "bogus": 1})
        port = m.serve()
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
        text = body.decode()
        assert _value(text, 'node_nf_conntrack_entries{node="node-1"}') == 1500
        assert _value(text, 'node_nf_conntrack_stat_drop{node="node-1"}') == 3
        with pytest.raises(UnsafeRequest, match="loopback"):
            m.serve(addr="0.0.0.0")


def _series_lines(text: str, prefix: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith(prefix)]


def test_latency_histogram_from_a_result_has_buckets() -> None:
    run = exhaustion_run()
    m = HarnessMetrics()
    m.load_result(run)
    text = m.text()
    for p in run["phases"]:
        hist = p["dns"]["latency_hist"]
        name = "conntrack_harness_dns_lookup_duration_seconds"
        buckets = _series_lines(text, f'{name}_bucket{{le="')
        mine = [ln for ln in buckets if f'phase="{p["name"]}"' in ln]
        assert len(mine) == len(hist["edges_s"]) + 1  # every edge and +Inf
        # cumulative: the +Inf bucket is every lookup; each edge adds the counts below it
        assert (
            _value(text, f'{name}_bucket{{le="+Inf",phase="{p["name"]}"}}') == p["dns"]["lookups"]
        )
        below_5 = sum(c for e, c in zip(hist["edges_s"], hist["counts"], strict=False) if e <= 5.0)
        assert _value(text, f'{name}_bucket{{le="5.0",phase="{p["name"]}"}}') == below_5


def test_latency_histogram_sum_and_count_when_the_result_has_the_sum() -> None:
    run = exhaustion_run()
    p = run["phases"][0]
    p["dns"]["latency_sum_s"] = 1234.5
    m = HarnessMetrics()
    m.load_result(run)
    text = m.text()
    name = "conntrack_harness_dns_lookup_duration_seconds"
    assert _value(text, f'{name}_sum{{phase="baseline"}}') == 1234.5
    assert _value(text, f'{name}_count{{phase="baseline"}}') == p["dns"]["lookups"]


def test_every_phases_node_values_are_kept() -> None:
    run = exhaustion_run()
    m = HarnessMetrics()
    for p in run["phases"]:  # as the CLI feeds it, phase by phase
        m.load_result({"phases": [p]})  # type: ignore[typeddict-item]
    text = m.text()
    for p in run["phases"]:
        for node in p["conntrack"]["nodes"]:
            where = f'node="{node["node"]}",phase="{p["name"]}"'
            assert (
                _value(text, f"conntrack_harness_conntrack_peak_entries{{{where}}}")
                == node["peak_count"]
            )
            assert (
                _value(text, f"conntrack_harness_conntrack_entries_limit{{{where}}}") == node["max"]
            )
            assert _value(text, f"conntrack_harness_conntrack_stat_drop{{{where}}}") == node["drop"]
    peaks = {p["conntrack"]["nodes"][0]["peak_count"] for p in run["phases"]}
    assert len(peaks) > 1  # the phases really differ, so a last-phase-only export would show
