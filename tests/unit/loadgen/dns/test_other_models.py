"""musl, Go and the plain sequential client on the fake transport."""

from __future__ import annotations

import pytest

from cthcommon.resolvconf import ResolvConf
from loadgen.dns.fake import FakeTransport, Zone, drive, drop_second_of_unanswered_pair
from loadgen.dns.lookup import recorded_lookup
from loadgen.dns.models import make_resolver
from loadgen.dns.models.base import ResolverModel
from loadgen.dns.types import LookupRecord
from tests.unit.loadgen.dns.support import pod_conf

FQDN = "my-service.default.svc.cluster.local."


def run(model: ResolverModel, t: FakeTransport, name: str = FQDN) -> LookupRecord:
    return drive(recorded_lookup(model, name, t))


# --- musl -------------------------------------------------------------------------------
@pytest.mark.parametrize("opt", ["", "single-request", "single-request-reopen"])
def test_musl_ignores_single_request_options(zone: Zone, opt: str) -> None:
    t = FakeTransport(zone, rtt=0.01)
    rec = run(make_resolver("musl", pod_conf(opt)), t)
    assert [q.qtype for q in t.log] == ["A", "AAAA"]
    assert len(rec.source_ports) == 1
    assert t.log[0].t == t.log[1].t


def test_musl_retries_every_timeout_over_attempts(zone: Zone) -> None:
    t = FakeTransport(zone, drop=drop_second_of_unanswered_pair)
    rec = run(make_resolver("musl", pod_conf()), t)
    assert rec.outcome == "answer"
    # Only the unanswered AAAA is resent, from the same socket, 2.5 s later.
    assert [(q.qtype, q.t) for q in t.log] == [("A", 0.0), ("AAAA", 0.0), ("AAAA", 2.5)]
    assert len(rec.source_ports) == 1
    assert rec.latency_s == pytest.approx(2.501)
    t3 = FakeTransport(zone, drop=drop_second_of_unanswered_pair)
    run(make_resolver("musl", pod_conf("timeout:3", "attempts:3")), t3)
    assert [q.t for q in t3.log] == [0.0, 0.0, 1.0]


def test_musl_gives_up_after_timeout_total() -> None:
    conf = pod_conf("timeout:4", "attempts:2", nameservers=("10.0.0.1", "10.0.0.2"))
    t = FakeTransport(Zone(), down=frozenset({"10.0.0.1", "10.0.0.2"}))
    rec = run(make_resolver("musl", conf), t, "x.example.")
    assert rec.outcome == "timeout"
    assert rec.latency_s == pytest.approx(4.0)
    # Every round: both queries to both servers at once, one socket throughout.
    assert [(q.t, q.server, q.qtype) for q in t.log][:4] == [
        (0.0, "10.0.0.1", "A"),
        (0.0, "10.0.0.2", "A"),
        (0.0, "10.0.0.1", "AAAA"),
        (0.0, "10.0.0.2", "AAAA"),
    ]
    assert sorted({q.t for q in t.log}) == [0.0, 2.0]
    assert len(rec.source_ports) == 1


def test_musl_search_only_below_ndots(zone: Zone) -> None:
    t = FakeTransport(zone)
    run(make_resolver("musl", pod_conf()), t, "my-service.default")
    assert [q.qname for q in t.log[::2]] == [
        "my-service.default.default.svc.cluster.local.",
        "my-service.default.svc.cluster.local.",
    ]
    conf = ResolvConf.parse("nameserver 10.0.0.1\nsearch a.local\noptions ndots:1\n")
    t2 = FakeTransport(Zone())
    rec = run(make_resolver("musl", conf), t2, "nothere.example")
    assert [q.qname for q in t2.log] == ["nothere.example.", "nothere.example."]  # no search
    assert rec.outcome == "nxdomain"


def test_musl_stops_on_nodata_where_glibc_walks_on() -> None:
    zone = Zone(names={"x.b.local"}, nodata={"x.a.local"})
    conf = ResolvConf.parse("nameserver 10.0.0.1\nsearch a.local b.local\noptions ndots:2\n")
    t = FakeTransport(zone)
    assert run(make_resolver("musl", conf), t, "x").outcome == "nodata"
    assert [q.qname for q in t.log] == ["x.a.local."] * 2
    t2 = FakeTransport(zone)
    assert run(make_resolver("glibc", conf), t2, "x").outcome == "answer"
    assert [q.qname for q in t2.log[::2]] == ["x.a.local.", "x.b.local."]
    t3 = FakeTransport(Zone())
    assert run(make_resolver("musl", conf), t3, "x").outcome == "nxdomain"
    assert len(t3.log) == 6


# --- Go ---------------------------------------------------------------------------------
def test_go_uses_two_ports_per_pair(zone: Zone) -> None:
    t = FakeTransport(zone)
    rec = run(make_resolver("go", pod_conf()), t)
    assert [q.qtype for q in t.log] == ["A", "AAAA"]
    assert len(rec.source_ports) == 2
    assert t.log[0].t == t.log[1].t


def test_go_single_request_is_sequential(zone: Zone) -> None:
    t = FakeTransport(zone, rtt=0.01)
    rec = run(make_resolver("go", pod_conf("single-request")), t)
    assert len(rec.source_ports) == 2
    assert t.log[1].t == pytest.approx(0.01)


def test_go_never_meets_the_same_socket_race(zone: Zone) -> None:
    t = FakeTransport(zone, drop=drop_second_of_unanswered_pair)
    rec = run(make_resolver("go", pod_conf()), t, "my-service.default")
    assert rec.full_timeout_waits == 0
    assert rec.outcome == "answer"


def test_go_retry_uses_new_socket_and_keeps_walking_after_timeout() -> None:
    t = FakeTransport(Zone(), down=frozenset({"10.96.0.10"}))
    rec = run(make_resolver("go", pod_conf("timeout:1", "attempts:2")), t, "a.b")
    # 4 candidates (3 search + as-is), each: A and AAAA, 2 tries, new port per try.
    assert rec.queries_sent == 4 * 2 * 2
    assert len(set(rec.source_ports)) == rec.queries_sent
    assert rec.latency_s == pytest.approx(4 * 2 * 1.0)
    assert rec.outcome == "timeout"


def test_go_use_vc(zone: Zone) -> None:
    rec = run(make_resolver("go", pod_conf("use-vc")), FakeTransport(zone))
    assert {a.proto for a in rec.attempts} == {"tcp"}


# --- sequential ---------------------------------------------------------------------------
def test_sequential_one_socket_per_query(zone: Zone) -> None:
    t = FakeTransport(zone, rtt=0.01, drop=drop_second_of_unanswered_pair)
    rec = run(make_resolver("sequential", pod_conf()), t, "my-service.default")
    assert rec.queries_sent == 4
    assert len(set(rec.source_ports)) == 4
    assert [q.t for q in t.log] == pytest.approx([0.0, 0.01, 0.02, 0.03])
    assert rec.full_timeout_waits == 0


def test_unknown_model_is_bad_input() -> None:
    from cthcommon.errors import BadInput

    with pytest.raises(BadInput, match=r"dns\.resolver"):
        make_resolver("bionic", pod_conf())
