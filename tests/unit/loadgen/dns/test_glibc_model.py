"""The glibc model's packet pattern, driven on the virtual-clock fake transport."""

from __future__ import annotations

import pytest

from cthcommon.resolvconf import ResolvConf
from loadgen.dns.fake import FakeTransport, SentQuery, Zone, drive, drop_second_of_unanswered_pair
from loadgen.dns.lookup import recorded_lookup
from loadgen.dns.models.glibc import GlibcResolver, send_window
from loadgen.dns.types import LookupRecord
from tests.unit.loadgen.dns.support import SEARCH, pod_conf

FQDN = "my-service.default.svc.cluster.local."


def run(model: GlibcResolver, t: FakeTransport, name: str) -> LookupRecord:
    return drive(recorded_lookup(model, name, t))


def pairs(log: list[SentQuery]) -> list[tuple[str, list[str]]]:
    """Group the log by source port: [(qname, [qtypes...]), ...] in order of first use."""
    out: dict[int, tuple[str, list[str]]] = {}
    for q in log:
        out.setdefault(q.port, (q.qname, []))[1].append(q.qtype)
    return list(out.values())


def test_default_sends_a_and_aaaa_back_to_back_from_one_port(zone: Zone) -> None:
    t = FakeTransport(zone)
    rec = run(GlibcResolver(pod_conf()), t, FQDN)
    assert rec.outcome == "answer"
    assert [q.qtype for q in t.log] == ["A", "AAAA"]
    assert len({q.port for q in t.log}) == 1
    assert t.log[0].t == t.log[1].t  # AAAA leaves before A's reply
    assert rec.source_ports == [t.log[0].port]
    assert rec.queries_sent == 2
    assert rec.replies_received == 2


def test_single_request_waits_for_a_then_same_port(zone: Zone) -> None:
    t = FakeTransport(zone, rtt=0.01)
    rec = run(GlibcResolver(pod_conf("single-request")), t, FQDN)
    assert rec.outcome == "answer"
    assert len(rec.source_ports) == 1
    assert t.log[1].t - t.log[0].t == pytest.approx(0.01)


def test_single_request_reopen_uses_a_new_port_for_aaaa(zone: Zone) -> None:
    t = FakeTransport(zone)
    rec = run(GlibcResolver(pod_conf("single-request-reopen")), t, FQDN)
    assert [q.qtype for q in t.log] == ["A", "AAAA"]
    assert len(rec.source_ports) == 2
    assert t.log[0].port != t.log[1].port


def test_search_list_short_name_ndots5_takes_two_pairs(zone: Zone) -> None:
    t = FakeTransport(zone)
    rec = run(GlibcResolver(pod_conf()), t, "my-service.default")
    assert pairs(t.log) == [
        ("my-service.default.default.svc.cluster.local.", ["A", "AAAA"]),
        ("my-service.default.svc.cluster.local.", ["A", "AAAA"]),
    ]
    assert [a.rcode for a in rec.attempts] == ["NXDOMAIN", "NXDOMAIN", "NOERROR", "NOERROR"]
    assert rec.outcome == "answer"


def test_external_name_walks_whole_list_then_as_is(zone: Zone) -> None:
    t = FakeTransport(zone)
    rec = run(GlibcResolver(pod_conf()), t, "example.org")
    assert [p[0] for p in pairs(t.log)] == [f"example.org.{d}." for d in SEARCH] + ["example.org."]
    assert all(p[1] == ["A", "AAAA"] for p in pairs(t.log))
    assert rec.queries_sent == 8
    assert rec.outcome == "nxdomain"


def test_enough_dots_tries_as_is_first() -> None:
    conf = ResolvConf.parse("nameserver 10.0.0.1\nsearch a.local b.local\noptions ndots:1\n")
    t = FakeTransport(Zone(names={"www.example.org"}))
    rec = run(GlibcResolver(conf), t, "www.example.org")
    assert pairs(t.log) == [("www.example.org.", ["A", "AAAA"])]
    assert rec.outcome == "answer"
    t2 = FakeTransport(Zone())
    run(GlibcResolver(conf), t2, "nothere.example")
    assert [p[0] for p in pairs(t2.log)] == [
        "nothere.example.",
        "nothere.example.a.local.",
        "nothere.example.b.local.",
    ]


def test_trailing_dot_is_absolute(zone: Zone) -> None:
    t = FakeTransport(zone)
    rec = run(GlibcResolver(pod_conf()), t, "nothere.example.")
    assert pairs(t.log) == [("nothere.example.", ["A", "AAAA"])]
    assert rec.outcome == "nxdomain"


@pytest.mark.parametrize("timeout", [1, 2, 5])
def test_dropped_aaaa_costs_exactly_timeout_then_sequential_and_sticky(
    zone: Zone, timeout: int
) -> None:
    t = FakeTransport(zone, rtt=0.001, drop=drop_second_of_unanswered_pair)
    proc = GlibcResolver(pod_conf(f"timeout:{timeout}"))
    first = run(proc, t, FQDN)
    assert first.outcome == "answer"
    assert first.full_timeout_waits == 1
    assert timeout <= first.latency_s < timeout + 0.01
    # After the window: resend on the same socket, A first, AAAA only after A's reply.
    assert [(q.qtype, q.dropped) for q in t.log] == [
        ("A", False),
        ("AAAA", True),
        ("A", False),
        ("AAAA", False),
    ]
    assert len({q.port for q in t.log}) == 1
    assert t.log[2].t == pytest.approx(timeout)
    assert t.log[3].t > t.log[2].t
    assert first.retries == 2
    # Sticky: the same process never sends a pair again, so never waits again.
    n = len(t.log)
    second = run(proc, t, FQDN)
    assert second.full_timeout_waits == 0
    assert second.latency_s < 0.01
    assert t.log[n + 1].t > t.log[n].t
    # A new process starts in parallel mode again and pays again.
    third = run(GlibcResolver(pod_conf(f"timeout:{timeout}")), t, FQDN)
    assert third.full_timeout_waits == 1
    assert third.latency_s >= timeout


def test_aaaa_lost_every_time_escalates_to_reopen_then_gives_a(zone: Zone) -> None:
    t = FakeTransport(zone, drop=lambda q: q.qtype == "AAAA")
    rec = run(GlibcResolver(pod_conf("timeout:1")), t, FQDN)
    # pair -> window -> sequential same port -> window -> reopen -> window -> A only.
    assert rec.full_timeout_waits == 3
    assert rec.outcome == "answer"
    assert len(rec.source_ports) == 3  # first socket, then one per query after the reopen
    assert 3 <= rec.latency_s < 3.1


def test_timeout_on_a_search_candidate_stops_the_walk() -> None:
    t = FakeTransport(Zone(), down=frozenset({"10.96.0.10"}))
    rec = run(GlibcResolver(pod_conf()), t, "my-service.default")
    # First search candidate: 2 attempts x 1 server, same socket; then the name as-is.
    assert [p[0] for p in pairs(t.log)] == [
        "my-service.default.default.svc.cluster.local.",
        "my-service.default.",
    ]
    assert [len(p[1]) for p in pairs(t.log)] == [4, 4]
    assert rec.outcome == "timeout"
    assert rec.full_timeout_waits == 4
    assert rec.latency_s == pytest.approx(20.0)


def test_send_window_per_nameserver_index() -> None:
    assert [send_window(i, 5, 3) for i in range(3)] == [5, 3, 6]
    assert [send_window(i, 1, 2) for i in range(2)] == [1, 1]


def test_two_dead_servers_retry_pattern() -> None:
    conf = ResolvConf.parse("nameserver 10.0.0.1\nnameserver 10.0.0.2\noptions attempts:2\n")
    t = FakeTransport(Zone(), down=frozenset({"10.0.0.1", "10.0.0.2"}))
    rec = run(GlibcResolver(conf), t, "x.example.")
    assert [q.server for q in t.log] == ["10.0.0.1"] * 2 + ["10.0.0.2"] * 2 + ["10.0.0.1"] * 2 + [
        "10.0.0.2"
    ] * 2
    assert len(rec.source_ports) == 2  # one socket per server, kept across rounds
    assert rec.latency_s == pytest.approx(2 * (5 + 5))


def test_second_server_answers_after_first_times_out() -> None:
    conf = ResolvConf.parse("nameserver 10.0.0.1\nnameserver 10.0.0.2\noptions timeout:2\n")
    t = FakeTransport(Zone(names={"a.example"}), down=frozenset({"10.0.0.1"}))
    rec = run(GlibcResolver(conf), t, "a.example.")
    assert rec.outcome == "answer"
    assert rec.latency_s == pytest.approx(2.001)


def test_rotate_spreads_first_server() -> None:
    conf = ResolvConf.parse("nameserver 10.0.0.1\nnameserver 10.0.0.2\noptions rotate\n")
    t = FakeTransport(Zone(names={"a.example"}))
    proc = GlibcResolver(conf)
    run(proc, t, "a.example.")
    run(proc, t, "a.example.")
    assert [q.server for q in t.log[::2]] == ["10.0.0.1", "10.0.0.2"]


def test_use_vc_is_tcp(zone: Zone) -> None:
    t = FakeTransport(zone)
    rec = run(GlibcResolver(pod_conf("use-vc")), t, FQDN)
    assert {a.proto for a in rec.attempts} == {"tcp"}
    assert len(rec.source_ports) == 1
    assert rec.outcome == "answer"


def test_refused_everywhere_fails_fast_as_error_not_timeout(zone: Zone) -> None:
    """A server shedding load (CoreDNS forward max_concurrent -> REFUSED): glibc tries every
    server and round, gets TRY_AGAIN, but never waits a timeout; the harness must not call
    that a timeout."""
    zone.refused.add(FQDN.rstrip("."))
    t = FakeTransport(zone)
    rec = run(GlibcResolver(pod_conf(nameservers=("10.96.0.10", "10.96.0.11"))), t, FQDN)
    assert rec.outcome == "error"
    assert rec.full_timeout_waits == 0
    assert rec.latency_s < 1.0
    assert {q.server for q in t.log} == {"10.96.0.10", "10.96.0.11"}  # next server tried
