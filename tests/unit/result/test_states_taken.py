"""The conntrack state snapshot says when it was taken: it is not at the peak (issue 13 §2)."""

from __future__ import annotations

from cthcommon.resolvconf import ResolvConf
from harness.kernel.sampler import NodeSeries
from harness.measurement import PhaseMeasurement
from harness.results.build import node_result


def _m(series: NodeSeries) -> PhaseMeasurement:
    return PhaseMeasurement(
        load={},
        series={series.node: series},
        node_counters={},
        server_counters={},
        conntrack_max=series.max,
        duration_s=10.0,
        resolv=ResolvConf.parse("nameserver 10.96.0.10\n"),
        sampler_cpu_s=0.0,
    )


def test_snapshot_mid_fill_is_labelled() -> None:
    s = NodeSeries("node-1", "ns", 4096, timeline=[(0.0, 0), (2.0, 3700), (5.0, 4096)])
    s.states_at_peak = {"TIME_WAIT": 3500}
    s.snapshot_at = (2.0, 3700, "first reached 90% of max")
    n = node_result("node-1", _m(s))
    assert n["peak_count"] == 4096
    taken = n["states_taken"]
    assert taken["count"] == 3700
    assert taken["count"] < n["peak_count"]  # honest: not the peak
    assert taken["t_s"] == 2.0
    assert taken["fill"] == round(3700 / 4096, 4)
    assert "90%" in taken["why"]


def test_no_snapshot_no_label() -> None:
    s = NodeSeries("node-1", "ns", 4096, timeline=[(0.0, 0)])
    assert "states_taken" not in node_result("node-1", _m(s))
