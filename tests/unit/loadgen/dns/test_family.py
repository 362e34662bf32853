"""load.dns.family: "ipv4" lookups send A only (musl AF_INET, Go "ip4"), so they cannot meet
the A/AAAA race; "any" keeps the pair (issue 13 §2)."""

from __future__ import annotations

import pytest

from cthcommon.errors import BadInput
from harness.scenario.loader import parse_scenario
from loadgen.dns.fake import FakeTransport, Zone, drive, drop_second_of_unanswered_pair
from loadgen.dns.lookup import recorded_lookup
from loadgen.dns.models import MODELS, make_resolver
from loadgen.dns.types import DNSPlan
from tests.unit.loadgen.dns.support import pod_conf

FQDN = "my-service.default.svc.cluster.local."


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_ipv4_sends_a_only(zone: Zone, kind: str) -> None:
    t = FakeTransport(zone, rtt=0.01)
    rec = drive(recorded_lookup(make_resolver(kind, pod_conf(), "ipv4"), FQDN, t))
    assert rec.outcome == "answer"
    assert [q.qtype for q in t.log] == ["A"]


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_any_sends_the_pair(zone: Zone, kind: str) -> None:
    t = FakeTransport(zone, rtt=0.01)
    rec = drive(recorded_lookup(make_resolver(kind, pod_conf()), FQDN, t))
    assert rec.outcome == "answer"
    assert sorted(q.qtype for q in t.log) == ["A", "AAAA"]


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_ipv4_cannot_meet_the_pair_race(zone: Zone, kind: str) -> None:
    """The injected race drops the second query of a same-port pair: with A alone, none."""
    t = FakeTransport(zone, drop=drop_second_of_unanswered_pair)
    rec = drive(recorded_lookup(make_resolver(kind, pod_conf(), "ipv4"), FQDN, t))
    assert rec.outcome == "answer"
    assert rec.full_timeout_waits == 0
    assert rec.latency_s < 1.0


def test_ipv4_timeout_when_the_server_is_down() -> None:
    conf = pod_conf("timeout:2", "attempts:2", nameservers=("10.0.0.1",))
    for kind in sorted(MODELS):
        t = FakeTransport(Zone(), down=frozenset({"10.0.0.1"}))
        rec = drive(recorded_lookup(make_resolver(kind, conf, "ipv4"), "x.example.", t))
        assert rec.outcome == "timeout", kind
        assert {q.qtype for q in t.log} == {"A"}


def test_unknown_family_refused() -> None:
    with pytest.raises(BadInput, match="family"):
        make_resolver("musl", pod_conf(), "ipv6")  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="family"):
        DNSPlan(rate=1, duration_s=1, names=["a"], resolver="musl", family="ipv6")  # type: ignore[arg-type]


def test_scenario_field() -> None:
    doc = {"name": "f", "load": {"dns": {"family": "ipv4"}}, "phases": [{"name": "a"}]}
    s = parse_scenario(doc)
    assert s.load.dns is not None
    assert s.load.dns.family == "ipv4"
    assert s.load.dns.model_dump()["family"] == "ipv4"  # what the netns backend hands the worker
    with pytest.raises(BadInput, match=r"dns\.family"):
        parse_scenario({**doc, "load": {"dns": {"family": "ipv6"}}})
