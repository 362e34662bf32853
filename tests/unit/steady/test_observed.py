"""A load not known in advance (a locustfile) is modelled from the rates the phase observed
in the kernel's counters (issue 18 item 5), so its steady state is judged, not waved through."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.kernel.sampler import NodeSeries
from harness.scenario.model import DNSLoad, HTTPLoad, LoadSpec
from harness.steady.model import SteadyState, observed_model, phase_model
from harness.steady.result import load_rates, steady_result
from tests.unit.steady.test_model_and_assess import CLUSTER, CONF, TW120, as_plan

pytestmark = pytest.mark.unit

MAX = 2048


def locust_model(tmp_path: Path, duration: float = 12) -> SteadyState:
    shop = tmp_path / "shop.py"
    shop.write_text("from locust import HttpUser\n\nclass Shopper(HttpUser):\n    pass\n")
    load = LoadSpec(
        duration_s=duration,
        http=HTTPLoad(locustfile=str(shop)),
        dns=DNSLoad(rate=40, names=["http-server"]),
    )
    return phase_model(
        as_plan(load), table_max=MAX, timeouts=TW120, resolv=CONF, names=["http-server"],
        known=CLUSTER.__contains__,
    )  # fmt: skip


def series(
    *, inserts_per_s: float, drops_per_s: float, count: int, states: dict[str, int], s: int = 12
) -> NodeSeries:
    """A node whose stat counters moved at these rates from the load's start (t=1) for
    ``s`` seconds, sampled at 2 Hz, the count at ``count`` from 2 s on."""
    stats = [
        (1.0 + i / 2, {"insert": int(inserts_per_s * i / 2), "drop": int(drops_per_s * i / 2)})
        for i in range(2 * s + 1)
    ]
    timeline = [(1.0 + i / 2, min(count, count * i // 4)) for i in range(2 * s + 1)]
    n = NodeSeries("node-1", "ns1", MAX, timeline=timeline, stat_timeline=stats)
    n.states_at_peak = states
    return n


def test_load_rates_are_the_stat_counters_over_the_load() -> None:
    n = series(inserts_per_s=90, drops_per_s=30, count=MAX, states={})
    # samples before and after the load do not count
    n.stat_timeline.insert(0, (0.0, {"insert": -500, "drop": -500}))
    n.stat_timeline.append((30.0, {"insert": 10**6, "drop": 10**6}))
    ins, drop = load_rates(n, load_start_s=1.0, duration_s=12) or (0.0, 0.0)
    assert ins == pytest.approx(90, rel=0.01)
    assert drop == pytest.approx(30, rel=0.01)
    assert load_rates(NodeSeries("n", "ns", MAX), load_start_s=1.0, duration_s=12) is None


def test_the_closing_customers_are_modelled_as_time_wait_from_the_kernels_rates(
    tmp_path: Path,
) -> None:
    """Inserted 60/s and refused 40/s on a 2048 table whose snapshot is TIME_WAIT: beyond the
    load's DNS (40/s), 60/s of new TCP flows that live TIME_WAIT, 3.5x the table."""
    m = locust_model(tmp_path)
    dns_rate = sum(f.rate for f in m.flows)
    o = observed_model(
        m,
        inserted_per_s=60,
        refused_per_s=40,
        states={"TIME_WAIT": 1900, "ESTABLISHED": 40, "UDP_ASSURED": 100},
    )
    assert o.unknown is None
    assert o.basis is not None
    tw = next(f for f in o.flows if f.kind == "observed-tcp-time-wait")
    assert tw.rate == pytest.approx(100 - dns_rate)
    assert tw.lifetime_s == TW120.tcp_time_wait
    assert o.saturated
    assert o.longest_lifetime_s == TW120.tcp_time_wait
    # 40 ESTABLISHED (2 %) are a pool; no CLOSE entries: no flow for them
    assert [f.kind for f in o.flows] == [
        "dns-udp",
        "observed-tcp-time-wait",
        "observed-tcp-established",
    ]
    assert "60.0 new entries/s" in o.basis
    assert "refused 40.0/s" in o.basis


def test_the_keep_alive_customers_add_only_their_pool(tmp_path: Path) -> None:
    m = locust_model(tmp_path)
    dns_rate = sum(f.rate for f in m.flows)
    o = observed_model(
        m,
        inserted_per_s=dns_rate + 0.1,
        refused_per_s=0,
        states={"ESTABLISHED": 40, "TIME_WAIT": 2},
    )
    # 0.1/s x 120 s = 12 entries: negligible against 2048, so it cannot set the settle time
    assert [f.kind for f in o.flows] == ["dns-udp", "observed-tcp-established"]
    assert o.longest_lifetime_s == m.longest_lifetime_s == 30.0
    assert o.occupancy == pytest.approx(sum(f.occupancy for f in m.flows) + 40)


def test_a_short_locust_phase_gets_a_real_assessment_and_the_length_it_needs(
    tmp_path: Path,
) -> None:
    """exhaustion-locust.yaml's closing phase as it was (12 s): the table is full in 2 s but,
    modelled from what the kernel saw, it cannot turn over before TIME_WAIT: inconclusive,
    with the duration that would judge it."""
    m = locust_model(tmp_path)
    n = series(inserts_per_s=60, drops_per_s=40, count=MAX, states={"TIME_WAIT": 1900})
    rows = [[float(s), 40.0, 10.0] for s in range(12)]
    ss = steady_result(
        m, {"node-1": n}, load_start_s=1.0, duration_s=12, dns_timeline=rows, aged=False
    )
    assert ss["reached"] is False
    assert not ss["reason"].startswith("not modelled")
    assert "model_basis" in ss
    assert "observed rates" in ss["model_basis"]
    assert any(f["kind"] == "observed-tcp-time-wait" for f in ss["flows"])
    assert ss["needed_duration_s"] is not None
    assert ss["needed_duration_s"] >= 180
    assert "no warm-up is possible" in ss["advice"]
    # the same load for that long is judged
    d = int(ss["needed_duration_s"])
    long = series(inserts_per_s=60, drops_per_s=40, count=MAX, states={"TIME_WAIT": 1900}, s=d)
    rows = [[float(s), 40.0, 10.0] for s in range(d)]
    ok = steady_result(
        locust_model(tmp_path, d), {"node-1": long}, load_start_s=1.0, duration_s=d,
        dns_timeline=rows, aged=False,
    )  # fmt: skip
    assert ok["reached"]
    assert ok["judged_on"] == "window"
