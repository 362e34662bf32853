"""The c-ares model's socket reuse and timeout schedule on the fake transport."""

from __future__ import annotations

import random

import pytest

from loadgen.dns.fake import FakeTransport, SentQuery, Zone, drive
from loadgen.dns.lookup import recorded_lookup
from loadgen.dns.models import make_resolver
from loadgen.dns.models.cares import (
    LIBRARY,
    NODE,
    CAresResolver,
    Embedding,
    try_timeout_ms,
)
from loadgen.dns.types import LookupRecord
from tests.unit.loadgen.dns.support import pod_conf

FQDN = "my-service.default.svc.cluster.local."


def _model(*opts: str, embedding: Embedding = LIBRARY, seed: int = 1) -> CAresResolver:
    return CAresResolver(pod_conf(*opts), "any", embedding, random.Random(seed))


def run(model: CAresResolver, t: FakeTransport, name: str = FQDN) -> LookupRecord:
    return drive(recorded_lookup(model, name, t))


def _drop_all(_q: SentQuery) -> bool:
    return True


def test_it_is_selectable_and_labelled() -> None:
    m = make_resolver("c-ares", pod_conf())
    assert m.name == "c-ares"


def test_a_and_aaaa_leave_together_from_one_port(zone: Zone) -> None:
    t = FakeTransport(zone, rtt=0.01)
    rec = run(_model(), t)
    assert rec.outcome == "answer"
    assert [q.qtype for q in t.log] == ["A", "AAAA"]
    assert t.log[0].port == t.log[1].port
    assert t.log[1].t < t.log[0].t + 0.01  # AAAA sent before A's answer came


def test_an_idle_connection_is_closed_unless_stay_open(zone: Zone) -> None:
    t = FakeTransport(zone, rtt=0.001)
    m = _model()
    ports = [run(m, t).source_ports[0] for _ in range(3)]
    assert len(set(ports)) == 3  # lookups that never overlap: a new port each
    t2 = FakeTransport(zone, rtt=0.001)
    kept = _model(embedding=Embedding(stay_open=True))
    ports2 = [run(kept, t2).source_ports[0] for _ in range(3)]
    assert len(set(ports2)) == 1  # ARES_FLAG_STAYOPEN: one port for the channel's life
    t3 = FakeTransport(zone, rtt=0.001)
    capped = _model(embedding=Embedding(stay_open=True, udp_max_queries=4))
    ports3 = [run(capped, t3).source_ports[0] for _ in range(4)]
    assert len(set(ports3)) == 2  # 2 queries per lookup, 4 per port


@pytest.mark.parametrize(("try_count", "jitter", "want"), [(0, 0.4, 2000), (1, 0.0, 4000)])
def test_each_round_doubles_the_timeout(try_count: int, jitter: float, want: int) -> None:
    assert try_timeout_ms(2000, try_count, 1, jitter) == want


def test_jitter_shortens_later_rounds_but_never_below_the_timeout() -> None:
    assert try_timeout_ms(2000, 1, 1, 0.25) == 3000
    assert try_timeout_ms(2000, 2, 1, 0.49) == 8000 - int(8000 * 0.49)
    assert try_timeout_ms(2000, 1, 2, 0.49) == 2000  # 2 servers: still the first round


def test_unanswered_queries_are_tried_3_times_each_from_a_new_port(zone: Zone) -> None:
    m = _model(seed=7)
    t = FakeTransport(zone, drop=_drop_all)
    rec = run(m, t)
    assert rec.outcome == "timeout"
    a = [q for q in t.log if q.qtype == "A"]
    assert len(a) == 3  # tries 3 (c-ares' default), one server
    assert a[1].t == pytest.approx(2.0)  # the first try waits the 2000 ms default
    assert 2.0 <= a[2].t - a[1].t <= 4.0  # second: 4000 ms minus up to half
    assert len({q.port for q in t.log}) == 1 + 2 + 2  # the pair, then every retry its own
    assert 2.0 + 2.0 + 4.0 <= rec.latency_s <= 2.0 + 4.0 + 8.0 + 0.01


def test_resolv_conf_timeout_and_attempts_are_honoured(zone: Zone) -> None:
    t = FakeTransport(zone, drop=_drop_all)
    run(_model("timeout:1", "attempts:4"), t)
    a = [q.t for q in t.log if q.qtype == "A"]
    assert len(a) == 4
    assert a[1] == pytest.approx(1.0)


def test_after_three_answers_the_timeout_is_five_times_the_latency_at_least_250_ms(
    zone: Zone,
) -> None:
    m = _model()
    ok = FakeTransport(zone, rtt=0.001)
    for _ in range(2):  # A and AAAA answered: 4 answers in the metrics
        run(m, ok)
    lost = FakeTransport(zone, drop=_drop_all)
    lost.clock = ok.clock
    run(m, lost)
    a = [q.t for q in lost.log if q.qtype == "A"]
    assert a[1] - a[0] == pytest.approx(0.25)
    slow = _model()
    s = FakeTransport(zone, rtt=0.2)
    for _ in range(2):
        run(slow, s)
    s2 = FakeTransport(zone, drop=_drop_all)
    s2.clock = s.clock
    run(slow, s2)
    b = [q.t for q in s2.log if q.qtype == "A"]
    assert b[1] - b[0] == pytest.approx(1.0)  # 200 ms x 5


def test_node_acts_on_timeouts_at_its_1_s_ticks_and_tries_4_times(zone: Zone) -> None:
    m = _model(embedding=NODE, seed=3)
    t = FakeTransport(zone, drop=_drop_all)
    rec = run(m, t)
    a = [q.t for q in t.log if q.qtype == "A"]
    assert len(a) == 4
    assert all(x == pytest.approx(round(x)) for x in a)  # on a tick of the channel's timer
    assert a[1] == pytest.approx(2.0)
    assert rec.latency_s == pytest.approx(round(rec.latency_s))


def test_servfail_is_retried_unless_nocheckresp() -> None:
    z = Zone(refused={"my-service.default.svc.cluster.local"})
    t = FakeTransport(z, rtt=0.001)
    rec = run(_model(), t)
    assert len(t.log) == 6  # REFUSED counts as a failed try: 3 tries of A and of AAAA
    assert rec.outcome == "error"
    t2 = FakeTransport(z, rtt=0.001)
    rec2 = run(_model(embedding=NODE), t2)
    assert len(t2.log) == 2  # Node passes every rcode back (ARES_FLAG_NOCHECKRESP)
    assert rec2.outcome == "error"


def test_search_list_walks_nxdomain_and_ipv4_sends_a_only(zone: Zone) -> None:
    t = FakeTransport(zone, rtt=0.001)
    rec = run(_model(), t, "my-service")
    assert rec.outcome == "answer"
    assert [q.qname for q in t.log][::2] == ["my-service.default.svc.cluster.local."]
    t2 = FakeTransport(zone, rtt=0.001)
    rec2 = run(_model(), t2, "my-service.default")
    assert [q.qname for q in t2.log][::2] == [
        "my-service.default.default.svc.cluster.local.",
        "my-service.default.svc.cluster.local.",
    ]
    assert rec2.outcome == "answer"
    assert len({q.port for q in t2.log}) == 1  # the walk stays on one socket
    t3 = FakeTransport(zone, rtt=0.001)
    m = CAresResolver(pod_conf(), "ipv4")
    run(m, t3)
    assert [q.qtype for q in t3.log] == ["A"]
