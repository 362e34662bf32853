"""Where the statsd sender's datagrams went, from the nft counters' samples (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.results.diff import diff_runs, render
from harness.results.statsd import describe, node_flow, statsd_result
from loadgen.udp.statsd import StatsdResult
from tests.sample_results import exhaustion_run

pytestmark = pytest.mark.unit


def _node(svc: int, in_: int, fwd: int, out: int, local: int = 0) -> dict[str, int]:
    return {
        "statsd_svc": svc,
        "statsd_in": in_,
        "statsd_fwd": fwd,
        "statsd_local": local,
        "statsd_out": out,
    }


SENDER: StatsdResult = {
    "target": "10.96.0.10",
    "port": 53,
    "payload": "cth:1|c",
    "rate_per_pod": 20.0,
    "pods": 2,
    "source_ports": {"10.244.1.2": 40000, "10.244.1.3": 40001},
    "sent": 100,
    "send_errors": 0,
    "timeline": [],
    "by_pod": {},
}


def test_node_flow_splits_routing_drops_from_forward_drops() -> None:
    f = node_flow(_node(svc=10, in_=12, fwd=7, out=5, local=1))
    assert (f["blackholed"], f["rejected"]) == (12 - 7 - 1, 7 - 5)
    assert f["sent"] == 10


def _samples(blackhole: bool) -> list[Any]:
    """Two nodes; 40 datagrams delivered before the window, 40 sent in it (blackholed on
    node-2, or rejected on node-1), 20 delivered after."""
    n1 = [_node(0, 0, 0, 0), _node(40, 40, 40, 40)]
    n2 = [_node(0, 0, 0, 0), _node(0, 20, 20, 20)]
    rx = [{"coredns-0": 0, "coredns-1": 0}, {"coredns-0": 20, "coredns-1": 20}]
    if blackhole:  # DNATed to a deleted pod on node-2: forwarded, then no route there
        n1.append(_node(80, 80, 80, 80))
        n2.append(_node(0, 60, 20, 20))
    else:  # no entry: kube-proxy's reject rule drops them in node-1's forward path
        n1.append(_node(80, 80, 80, 40))
        n2.append(_node(0, 20, 20, 20))
    rx.append(dict(rx[-1]))
    n1.append(_node(100, 100, 100, 60 if not blackhole else 100))
    n2.append(_node(0, 80 if blackhole else 40, 40, 40))
    rx.append({"coredns-2": 10, "coredns-3": 10, **rx[-1]})
    times = [-4.0, 5.0, 18.0, 28.5]
    return [
        (t, {"node-1": a, "node-2": b}, r) for t, a, b, r in zip(times, n1, n2, rx, strict=True)
    ]


@pytest.mark.parametrize("blackhole", [True, False])
def test_the_window_says_where_the_datagrams_went(blackhole: bool) -> None:
    r = statsd_result(SENDER, _samples(blackhole), [(5.0, 18.0)], "test")
    assert r["sent"] == 100
    assert r["sent_seen_by_nodes"] == 100
    assert r["delivered"] == 60
    assert r["lost"] == 40
    assert r["delivered_rate"] == 0.6
    assert r["by_receiver"]["coredns-2"] == 10
    (w,) = r["zero_windows"]
    assert (w["from_s"], w["to_s"], w["sent"], w["delivered"]) == (5.0, 18.0, 40, 0)
    if blackhole:
        assert (r["blackholed"], r["rejected"], r["blackholed_rate"]) == (40, 0, 1.0)
    else:
        assert (r["blackholed"], r["rejected"], r["rejected_rate"]) == (0, 40, 1.0)
    assert w["unaccounted"] == 0
    assert [row[0] for row in r["timeline"]] == [5.0, 18.0, 28.5]
    assert "blackholed" in describe(r)


def test_no_window_and_too_few_samples_count_nothing_in_windows() -> None:
    r = statsd_result(SENDER, _samples(True), [], "test")
    assert r["zero_windows"] == []
    assert r["blackholed"] == r["window_sent"] == 0
    assert r["blackholed_rate"] == 0.0
    r = statsd_result(SENDER, _samples(True)[:1], [(5.0, 18.0)], "test")
    assert r["delivered"] == 0
    assert r["zero_windows"][0]["sent"] == 0


def test_compare_names_each_sides_statsd_delivery() -> None:
    a, b = exhaustion_run(), exhaustion_run()
    a["phases"][0]["statsd"] = statsd_result(SENDER, _samples(True), [(5.0, 18.0)], "t")
    b["phases"][0]["statsd"] = statsd_result(SENDER, _samples(False), [(5.0, 18.0)], "t")
    d = diff_runs(a, b)
    text = render(d)
    assert "the statsd sender (phases[].statsd):" in text
    assert "40 to a deleted pod, 0 rejected" in text
    assert "0 to a deleted pod, 40 rejected" in text
    side = d.to_json()["phases"][0]
    assert side["a"]["statsd"]["blackholed"] == 40
    assert side["b"]["statsd"]["rejected"] == 40
