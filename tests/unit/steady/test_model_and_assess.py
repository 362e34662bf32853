"""The steady-state model: occupancy from the load, time to get there, and the assessment of a
sampled table (pure)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from cthcommon.errors import BadInput
from cthcommon.resolvconf import ResolvConf
from harness.plan.phase import plan_load
from harness.plan.types import LoadPlan
from harness.scenario.loader import parse_scenario
from harness.scenario.model import LoadSpec
from harness.steady.assess import assess
from harness.steady.model import (
    SteadyState,
    Timeouts,
    aged_timeout,
    dns_flows,
    entries_per_lookup,
    http_flows,
    remaining_lifetimes,
    warmup_chunks,
)

TW120 = Timeouts(tcp_time_wait=120)


def as_plan(load: LoadSpec, *, pooling: int | None = None) -> LoadPlan:
    """The load as a phase plans it (the model takes the plan: pooling folded in)."""
    s = parse_scenario({"name": "t", "load": load.model_dump(), "phases": [{"name": "p"}]})
    return plan_load(s, load, fqdn=False, pooling=pooling)


CLUSTER = {"http-server.default.svc.cluster.local", "kube-dns.kube-system.svc.cluster.local"}
CONF = ResolvConf.build(
    ["10.96.0.10"],
    ["default.svc.cluster.local", "svc.cluster.local", "cluster.local"],
    {"ndots": "5"},
)


def model(rate: float, cmax: int, tw: float = 120, dns: float = 0.0) -> SteadyState:
    t = Timeouts(tcp_time_wait=tw)
    flows = http_flows("short-lived", rate, 8, t) + dns_flows(dns, 1.0, t)
    return SteadyState(tuple(flows), cmax)


def test_issue_numbers_near_the_limit() -> None:
    """140/s x 120 s = 1.025 x 16384: saturated, and the table needs ~117 s to fill; 133/s
    settles below max after one TIME_WAIT."""
    above = model(140, 16384)
    assert above.saturated
    assert above.ratio == pytest.approx(16800 / 16384)
    assert above.level == 16384
    assert above.time_to_steady_s == pytest.approx(16384 / 140, rel=1e-6)
    below = model(133, 16384)
    assert not below.saturated
    assert below.level == pytest.approx(133 * 120)
    assert below.time_to_steady_s == 120


def test_exhaustion_baseline_fills_after_the_old_five_second_phase() -> None:
    m = model(800, 4096)
    assert m.saturated
    assert m.time_to_steady_s == pytest.approx(4096 / 800)
    assert m.time_to_steady_s > 5.0


def test_dns_counts_towards_the_table() -> None:
    """500/s x TIME_WAIT 30 = 15,000 of 16,384: HTTP alone stays below max; the DNS entries
    (lookups x entries x udp_timeout) push the load over it."""
    t = Timeouts(tcp_time_wait=30, udp=30)
    http = http_flows("short-lived", 500, 8, t)
    assert not SteadyState(tuple(http), 16384).saturated
    both = SteadyState(tuple(http + dns_flows(40, 2.0, t)), 16384)
    assert both.occupancy == pytest.approx(15000 + 2400)
    assert both.saturated
    assert both.time_to_steady_s < 30


def test_pooled_holds_its_pool_and_nodelocal_nothing() -> None:
    t = Timeouts()
    pooled = SteadyState(tuple(http_flows("pooled", 800, 8, t)), 4096)
    assert pooled.occupancy == 8
    assert pooled.time_to_steady_s == 0
    nl = dns_flows(1000, 2.0, t, notrack=True)
    assert SteadyState(tuple(nl), 4096).occupancy == 0


def test_server_close_and_use_vc_are_time_wait() -> None:
    t = Timeouts(tcp_time_wait=60, udp=30)
    assert http_flows("server-close", 10, 8, t)[0].lifetime_s == 60
    assert dns_flows(10, 2.0, t, tcp=True)[0].lifetime_s == 60
    assert dns_flows(10, 2.0, t)[0].lifetime_s == 30


def test_stream_share_lives_udp_timeout_stream() -> None:
    t = Timeouts(udp=30, udp_stream=120)
    flows = dns_flows(10, 1.0, t, stream_fraction=0.25)
    occ = sum(f.occupancy for f in flows)
    assert occ == pytest.approx(7.5 * 30 + 2.5 * 122)


def test_entries_per_lookup_follows_the_search_list() -> None:
    def known(n: str) -> bool:
        return n in CLUSTER

    # first candidate answers
    assert entries_per_lookup(["http-server"], CONF, "glibc", known) == 1
    # kube-dns.kube-system.default.svc... is NXDOMAIN, then .svc.cluster.local answers
    assert entries_per_lookup(["kube-dns.kube-system"], CONF, "glibc", known) == 2
    assert entries_per_lookup(["http-server", "kube-dns.kube-system"], CONF, "glibc", known) == 1.5
    # an unknown name tries every candidate: 3 search domains + as-is
    assert entries_per_lookup(["example.org"], CONF, "glibc", known) == 4
    # one socket per query
    assert entries_per_lookup(["http-server"], CONF, "go", known) == 2
    reopen = CONF.with_flag("single-request-reopen")
    assert entries_per_lookup(["http-server"], reopen, "glibc", known) == 2
    assert entries_per_lookup(["http-server"], reopen, "musl", known) == 1


def test_time_to_reaches_partial_levels() -> None:
    m = model(100, 100_000, tw=20)
    assert m.time_to(1000) == pytest.approx(10, rel=1e-6)
    assert m.time_to(10_000) == math.inf


def test_warmup_entries_share_a_full_table() -> None:
    t = Timeouts(tcp_time_wait=100, udp=50)
    flows = http_flows("short-lived", 30, 8, t) + dns_flows(20, 1.0, t)  # 3000 + 1000
    m = SteadyState(tuple(flows), 2000)
    got = [m.warmup_entries(f) for f in m.flows]
    assert got == [1470, 490]  # 98 % of the table, shared 3:1
    below = SteadyState(tuple(flows), 8000)
    assert [below.warmup_entries(f) for f in below.flows] == [3000, 1000]
    assert m.warmup_entries(http_flows("pooled", 1, 8, t)[0]) == 0


def test_warmup_chunks_spread_remaining_lifetimes_evenly() -> None:
    chunks = warmup_chunks(1000, 20.0)
    assert sum(n for n, _ in chunks) == 1000
    assert len(chunks) == 20
    targets = [r for _, r in chunks]
    assert targets == sorted(targets, reverse=True)
    assert min(targets) > 0
    assert max(targets) < 20
    # evenly: the mean remaining lifetime is half the lifetime
    mean = sum(n * r for n, r in chunks) / 1000
    assert mean == pytest.approx(10.0, abs=0.05)
    assert len(warmup_chunks(5, 120.0)) == 5
    assert warmup_chunks(0, 10.0) == []
    assert remaining_lifetimes(4, 8.0) == [1.0, 3.0, 5.0, 7.0]


def test_aged_timeout_adds_the_time_until_the_load() -> None:
    assert aged_timeout(5.0, 2.4) == 7
    assert aged_timeout(0.2, 0.0) == 1
    assert aged_timeout(3.0, -1.0) == 3


def _ramp(rate: float, cmax: int, until: float, start: float = 1.0) -> list[tuple[float, int]]:
    return [(start + i / 10, min(cmax, int(rate * i / 10))) for i in range(int(until * 10) + 1)]


def test_assess_a_phase_still_filling_is_not_steady() -> None:
    """max 16384, 500/s, TIME_WAIT 30 plus DNS: a 20 s phase ends before the table arrives."""
    t = Timeouts(tcp_time_wait=30, udp=30)
    m = SteadyState(tuple(http_flows("short-lived", 500, 8, t) + dns_flows(40, 2.0, t)), 16384)
    a = assess(m, _ramp(580, 16384, 20), load_start_s=1.0, duration_s=20)
    assert not a.reached
    assert a.steady_from_s is None
    assert "never reached" in a.reason
    assert "16,384" in a.reason


def test_a_natural_start_that_fills_the_table_says_it_cannot_turn_over() -> None:
    """800/s into 4,096 with TIME_WAIT 120 s: full after ~5 s of a 10 s phase, yet no entry
    can expire for 120 s; the reason says that, not that the table never arrived."""
    m = model(800, 4096)
    a = assess(
        m, _ramp(800, 4096, 10), load_start_s=1.0, duration_s=10, settle_s=m.longest_lifetime_s
    )
    assert not a.reached
    assert "never reached" not in a.reason
    assert "filled (4,096 of max 4,096) 4.7 s into the load" in a.reason  # 3,686 at 800/s
    assert "120 s after the load began" in a.reason


def test_assess_late_arrival_is_not_steady_and_window_counts() -> None:
    m = model(800, 4096)
    dns = [[float(s), 10.0, 1.0 if s >= 5 else 0.0] for s in range(20)]
    a = assess(m, _ramp(800, 4096, 20), load_start_s=1.0, duration_s=20, dns_timeline=dns)
    assert a.steady_from_s == pytest.approx(4.7, abs=0.11)  # 0.9 * 4096 / 800
    assert not a.reached
    assert "only 4.7 s" in a.reason
    assert a.lookups == 150  # whole seconds 5..19
    assert a.timeouts == 15

    natural = assess(m, _ramp(800, 4096, 20), load_start_s=1.0, duration_s=20, settle_s=120)
    assert natural.steady_from_s is None  # turns over only once TIME_WAIT has passed


def test_assess_warm_table_is_steady() -> None:
    m = model(800, 4096)
    warm = [(0.5 + i / 10, 4000) for i in range(60)]
    a = assess(m, warm, load_start_s=0.5, duration_s=6)
    assert a.reached
    assert a.steady_from_s == 0.0
    assert a.observed_mean == 4000


def test_bad_model_input() -> None:
    with pytest.raises(BadInput):
        SteadyState((), 0)
    with pytest.raises(BadInput):
        Timeouts(tcp_time_wait=0)
    with pytest.raises(BadInput):
        http_flows("bogus", 1, 1, Timeouts())


def test_phase_model_of_the_exhaustion_load() -> None:
    from harness.scenario.model import DNSLoad, HTTPLoad, LoadSpec
    from harness.steady.model import phase_model

    load = LoadSpec(
        duration_s=5,
        http=HTTPLoad(mode="short-lived", rate=800),
        dns=DNSLoad(rate=160, names=["http-server", "kube-dns.kube-system"]),
    )
    names = ["http-server", "kube-dns.kube-system"]
    m = phase_model(
        as_plan(load),
        table_max=4096,
        timeouts=TW120,
        resolv=CONF,
        names=names,
        known=CLUSTER.__contains__,
    )
    assert [f.kind for f in m.flows] == ["http-short-lived", "dns-udp"]
    assert m.occupancy == pytest.approx(800 * 120 + 160 * 1.5 * 30)
    pooled = phase_model(
        as_plan(load, pooling=8),
        table_max=4096,
        timeouts=TW120,
        resolv=CONF,
        names=names,
        known=CLUSTER.__contains__,
        nodelocal=True,
    )
    assert pooled.occupancy == 8
    vc = phase_model(
        as_plan(load),
        table_max=4096,
        timeouts=TW120,
        resolv=CONF.with_flag("use-vc"),
        names=names,
        known=CLUSTER.__contains__,
    )
    assert vc.flows[1].kind == "dns-tcp"
    assert vc.flows[1].occupancy == pytest.approx(160 * 1.5 * 120)
    burst = LoadSpec(dns=DNSLoad(rate=100, pattern="burst", burst_on_s=1, burst_off_s=3), http=None)
    b = phase_model(
        as_plan(burst),
        table_max=4096,
        timeouts=TW120,
        resolv=CONF,
        names=["http-server"],
        known=CLUSTER.__contains__,
    )
    assert b.occupancy == pytest.approx(25 * 30)


def test_far_below_the_limit_counts_as_steady() -> None:
    m = model(10, 65536, tw=30)
    dns = [[0.0, 10.0, 0.0], [1.0, 10.0, 1.0]]
    a = assess(m, [(0.0, 5), (1.0, 12)], load_start_s=0.0, duration_s=5, dns_timeline=dns)
    assert a.lookups == 20
    assert a.timeouts == 1
    assert m.far_below_limit
    assert a.reached
    assert "far below the limit" in a.reason
    assert not model(1000, 65536, tw=60).far_below_limit


def test_warmup_readback_parsing() -> None:
    from harness.steady.warmup import lifetimes_at_load, remaining_by_kind

    listing = (
        "tcp      6 117 TIME_WAIT src=10.244.1.2 dst=10.96.0.20 sport=1 dport=80 [ASSURED]\n"
        "tcp      6 3 TIME_WAIT src=10.244.1.2 dst=10.96.0.20 sport=2 dport=80 [ASSURED]\n"
        "udp      17 28 src=10.244.1.2 dst=10.96.0.10 sport=3 dport=53\n"
        "conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.\n"
    )
    got = remaining_by_kind(listing)
    assert got == {"tcp-TIME_WAIT": [117, 3], "udp": [28]}
    at_load = lifetimes_at_load(100.0, got, 101.5)
    assert at_load["tcp-TIME_WAIT"]["max"] == 115.5
    assert at_load["tcp-TIME_WAIT"]["min"] == 1.5
    assert at_load["udp"]["n"] == 1


def test_describe_names_the_occupancy_the_warmup_and_the_reason() -> None:
    from harness.steady.assess import describe

    ss = {
        "reached": True,
        "reason": "in steady state from 0.0 s after the load started (4,096 of max 4,096)",
        "expected_occupancy": 103200.0,
        "occupancy_vs_max": 25.1953,
        "max": 4096,
        "observed_mean": 4093.4,
        "observed_vs_max": 0.9994,
        "time_to_steady_s": 0.013,
        "natural_time_to_steady_s": 3.94,
        "warmup": {"method": "aged-fill", "flows": [{"kind": "http-short-lived", "opened": 3810}]},
    }
    text = describe(ss)
    assert text.startswith("steady state: the load holds 103,200 entries (25.20 x max 4,096)")
    assert "3810 http-short-lived entries" in text
    assert text.endswith("(4,096 of max 4,096).")
    not_reached = describe({**ss, "reached": False, "time_to_steady_s": None, "warmup": {}})
    assert not_reached.startswith("NOT in steady state (inconclusive)")
    assert "never reached" in not_reached


def test_batch_means_interval_is_wider_for_a_sawtooth() -> None:
    from cthcommon.stats import wilson
    from harness.steady.assess import batch_means_ci

    # the table is full for 5 s (every lookup fails), then reaped for 5 s (none fails)
    saw = [[float(s), 20.0, 20.0 if (s // 5) % 2 == 0 else 0.0] for s in range(40)]
    rate, lo, hi, k = batch_means_ci(saw)
    assert rate == 0.5
    assert k == 8
    w_lo, w_hi = wilson(400, 800)
    assert lo < w_lo
    assert hi > w_hi
    steady = [[float(s), 20.0, 10.0] for s in range(40)]
    _, lo2, hi2, _ = batch_means_ci(steady)
    assert lo2 == pytest.approx(0.5)
    assert hi2 == pytest.approx(0.5)
    assert batch_means_ci(steady[:3])[1:3] == (0.0, 1.0)  # one batch: no interval


def test_expectations_can_name_the_steady_state() -> None:
    from harness.scenario.expect import Expectation

    e = Expectation.parse("steady_state.reached == 1")
    assert e.evaluate({"steady_state": {"reached": True}}) == (True, 1.0)
    assert e.evaluate({"steady_state": {"reached": False}}) == (False, 0.0)
    assert Expectation.parse("node.dns_local > 0").evaluate({"node": {"dns_local": 5}})[0]


def test_a_locustfile_load_is_not_modelled_so_its_steady_state_is_not_judged(
    tmp_path: Path,
) -> None:
    """A locustfile's connection rate is its users' code: the model knows only the DNS load
    in advance, so there is no warm-up; without the kernel's rates to model it from
    (tests/unit/result/test_steady_observed.py), the phase's steady state is inconclusive
    whatever the fill, with the reason and what the table did."""
    from harness.scenario.model import DNSLoad, HTTPLoad, LoadSpec
    from harness.steady.model import phase_model

    shop = tmp_path / "shop.py"
    shop.write_text("from locust import HttpUser\n\nclass Shopper(HttpUser):\n    pass\n")
    http = HTTPLoad(locustfile=str(shop))
    load = LoadSpec(duration_s=12, http=http, dns=DNSLoad(rate=40, names=["http-server"]))
    m = phase_model(
        as_plan(load),
        table_max=2048,
        timeouts=TW120,
        resolv=CONF,
        names=["http-server"],
        known=CLUSTER.__contains__,
    )
    assert m.unknown is not None
    assert "locustfile" in m.unknown
    assert [f.kind for f in m.flows] == ["dns-udp"]  # no invented HTTP flow
    assert not m.far_below_limit  # the unmodelled load may fill the table: no free pass
    dns = [[float(s), 40.0, 0.0] for s in range(12)]
    full = [(0.5 * i, min(2048, 200 * i)) for i in range(25)]
    a = assess(m, full, load_start_s=0.0, duration_s=12, dns_timeline=dns)
    assert not a.reached
    assert a.reason.startswith("not modelled: the HTTP load is a locustfile")
    assert "the table was full from 5.0 s" in a.reason
    quiet = [(0.5 * i, 60) for i in range(25)]
    b = assess(m, quiet, load_start_s=0.0, duration_s=12, dns_timeline=dns)
    assert not b.reached
    assert "it peaked at 60 of max 2,048" in b.reason


def test_describe_an_unmodelled_phase_claims_no_expected_occupancy() -> None:
    from harness.steady.assess import describe

    text = describe(
        {
            "reached": False,
            "reason": "not modelled: the HTTP load is a locustfile; so no warm-up",
            "max": 2048,
            "observed_mean": 1500.0,
            "observed_vs_max": 0.73,
            "expected_occupancy": 1200.0,
        }
    )
    assert text.startswith("NOT in steady state (inconclusive): the table averaged 1,500")
    assert "the load holds" not in text  # the model knows only the DNS part of the load
    assert "Not modelled: the HTTP load is a locustfile" in text
