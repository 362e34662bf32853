"""kube-proxy's syncs, reconciles and memory from its /metrics and /proc (pure)."""

from __future__ import annotations

import pytest

from harness.results.kubeproxy import (
    DELETED,
    RECONCILE,
    SYNC,
    Histogram,
    NodeReadings,
    durations,
    histograms,
    kube_proxy_result,
    vmrss_kib,
)

pytestmark = pytest.mark.unit

BOUNDS = ["0.001", "0.002", "0.004", "0.008", "+Inf"]


def _hist(name: str, counts: list[int], total: float, family: str = "IPv4") -> str:
    lines = [f"# HELP {name} latency", f"# TYPE {name} histogram"]
    for le, n in zip(BOUNDS, counts, strict=True):
        lines.append(f'{name}_bucket{{ip_family="{family}",le="{le}"}} {n}')
    lines.append(f'{name}_sum{{ip_family="{family}"}} {total}')
    lines.append(f'{name}_count{{ip_family="{family}"}} {counts[-1]}')
    return "\n".join(lines) + "\n"


def _counter(name: str, value: float) -> str:
    """As kube-proxy writes one: its TYPE line names the sample (``..._total``)."""
    return f'# HELP {name} c\n# TYPE {name} counter\n{name}{{ip_family="IPv4"}} {value}\n'


def _metrics(sync: list[int], rec: list[int] | None, deleted: float | None) -> str:
    text = _hist(SYNC, sync, 0.01 * sync[-1])
    if rec is not None:
        text += _hist(RECONCILE, rec, 0.003 * rec[-1])
    if deleted is not None:
        text += _counter(DELETED, deleted)
    return text


def test_histograms_sum_label_sets_and_read_counters() -> None:
    text = _hist(SYNC, [1, 2, 2, 3, 3], 0.02) + _hist(SYNC, [0, 1, 1, 1, 1], 0.002, "IPv6")
    hists, counters = histograms(text + _counter(DELETED, 7))
    h = hists[SYNC]
    assert h.count == 4
    assert h.buckets[0.002] == 3
    assert h.total == pytest.approx(0.022)
    assert counters[DELETED] == 7


def test_durations_give_bucket_bounds_and_an_exact_mean() -> None:
    d = durations(Histogram({0.001: 1, 0.002: 1, 0.004: 3, 0.008: 4, float("inf"): 4}, 4, 0.014))
    assert d["count"] == 4
    assert d["mean_s"] == pytest.approx(0.0035)
    assert d["p50_le_s"] == 0.004  # the 2nd of 4 is in (0.002, 0.004]
    assert d["max_le_s"] == 0.008
    inf = durations(Histogram({0.001: 0, float("inf"): 1}, 1, 20.0))
    assert inf["max_le_s"] is None  # beyond the last finite bucket: no bound to give
    assert durations(Histogram())["mean_s"] is None


def test_the_difference_since_before_and_a_restart() -> None:
    before = Histogram({0.001: 5, float("inf"): 10}, 10, 0.5)
    after = Histogram({0.001: 6, float("inf"): 13}, 13, 0.6)
    d = after.minus(before)
    assert (d.count, d.buckets[0.001], round(d.total, 6)) == (3, 1, 0.1)
    restarted = Histogram({0.001: 1, float("inf"): 2}, 2, 0.01)
    assert restarted.minus(before) is restarted


def test_vmrss() -> None:
    status = "Name:\tkube-proxy\nVmPeak:\t  900 kB\nVmRSS:\t   51234 kB\nThreads:\t9\n"
    assert vmrss_kib(status) == 51234
    assert vmrss_kib("Name:\tzombie\nState:\tZ\n") is None


def test_phase_result_per_node_and_over_nodes() -> None:
    a = NodeReadings(
        pid=10,
        before=_metrics([1, 1, 2, 2, 2], [2, 2, 2, 2, 2], 3),
        after=_metrics([1, 2, 4, 5, 5], [3, 4, 5, 5, 5], 9),
        samples=[(0.0, 40000, 100), (1.0, 42000, 350), (2.0, 41000, 900)],
    )
    b = NodeReadings(
        pid=11,
        before=_metrics([0, 0, 0, 0, 0], [0, 0, 0, 0, 0], 0),
        after=_metrics([1, 1, 1, 1, 1], [1, 1, 1, 1, 1], 0),
        samples=[(0.0, 30000, 10), (1.0, None, 20)],
    )
    r, missing = kube_proxy_result({"node-1": a, "node-2": b})
    assert missing == {}
    n1 = r["nodes"]["node-1"]
    assert n1["sync"] is not None
    assert n1["sync"]["count"] == 3
    assert n1["reconcile"] is not None
    assert n1["reconcile"]["count"] == 3
    assert n1["reconcile"]["max_le_s"] == 0.004
    assert n1["reconcile_deleted_entries"] == 6
    assert (n1["rss_kib_max"], n1["conntrack_count_at_rss_max"]) == (42000, 350)
    assert n1["conntrack_count_max"] == 900
    assert r["nodes"]["node-2"]["timeline"] == [[0.0, 30000.0, 10.0]]
    assert r["sync_count"] == 4
    assert r["reconcile_count"] == 4
    assert r["reconcile_max_le_s"] == 0.004
    assert r["reconcile_deleted_entries"] == 6
    assert r["rss_kib_max"] == 42000
    assert r["conntrack_count_max"] == 900


def test_what_a_release_does_not_expose_is_listed() -> None:
    old = NodeReadings(
        pid=10,
        before=_metrics([1, 1, 1, 1, 1], None, None),
        after=_metrics([1, 1, 2, 2, 2], None, None),
        samples=[],
    )
    r, missing = kube_proxy_result({"node-1": old})
    assert set(missing) == {
        "kube_proxy.reconcile",
        "kube_proxy.reconcile_deleted_entries",
        "kube_proxy.rss",
    }
    assert RECONCILE in missing["kube_proxy.reconcile"]
    assert missing["kube_proxy.reconcile"].startswith("node-1: ")
    assert "reconcile_count" not in r
    assert r["sync_count"] == 1
    _, gone = kube_proxy_result({"node-1": NodeReadings(pid=None, before=None, after=None)})
    assert "kube_proxy.metrics" in gone


def test_describe_names_each_node() -> None:
    from harness.results.kubeproxy import describe

    a = NodeReadings(
        pid=10,
        before=_metrics([0, 0, 0, 0, 0], [0, 0, 0, 0, 0], 0),
        after=_metrics([0, 1, 1, 1, 1], [0, 0, 0, 0, 2], 0),
        samples=[(0.0, 2048, 300)],
    )
    r, _ = kube_proxy_result({"node-1": a})
    text = describe(r)
    assert "node-1: 1 rule syncs, 2 conntrack reconciles" in text
    assert "max past the buckets" in text  # both in +Inf: no bound to give
    assert "RSS up to 2.0 MiB with 300 conntrack entries" in text


def test_a_restart_in_the_phase_counts_the_new_process_alone() -> None:
    r = NodeReadings(
        pid=20,  # a new kube-proxy by the end
        pid_before=10,
        before=_metrics([1, 1, 1, 1, 1], [1, 1, 1, 1, 1], 5),
        after=_metrics([1, 2, 2, 2, 2], [1, 2, 2, 2, 2], 1),  # more than before, all new
        samples=[(0.0, 1000, 10)],
    )
    n = kube_proxy_result({"node-1": r})[0]["nodes"]["node-1"]
    assert n["sync"] is not None
    assert n["sync"]["count"] == 2
    assert n["reconcile_deleted_entries"] == 1
    assert n["pid"] == 20
