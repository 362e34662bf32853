"""The other levers the seeds name: ndots, CoreDNS cache/replicas/concurrency, and NodeLocal
DNSCache beside a full table."""

from __future__ import annotations

import pytest

from harness.pytest_plugin import RunScenario, assert_expectations

pytestmark = [pytest.mark.kernel, pytest.mark.scenario]


def test_ndots_amplification(run_scenario: RunScenario) -> None:
    result = run_scenario("scenarios/ndots.yaml")
    by = {p["name"]: p["dns"]["by_name"] for p in result["phases"]}
    # glibc: short names answer on the first search candidate; external names walk the list
    assert by["ndots-5"]["http-server"]["queries_per_lookup"] == 2
    assert by["ndots-5"]["api.example.com"]["queries_per_lookup"] == 8
    assert by["ndots-2"]["api.example.com"]["queries_per_lookup"] == 2  # as-is first now
    assert by["ndots-2"]["kube-dns.kube-system"]["queries_per_lookup"] == 4  # 1 dot < 2
    assert all(v["queries_per_lookup"] == 2 for v in by["fqdn"].values())
    qpl = {c["phase"]: c for c in result["comparisons"] if c["metric"] == "dns.queries_per_lookup"}
    assert qpl["ndots-2"]["change"] < 0
    assert qpl["fqdn"]["change"] < qpl["ndots-2"]["change"]


def test_coredns_levers_are_told_apart_from_conntrack(run_scenario: RunScenario) -> None:
    result = run_scenario("scenarios/coredns.yaml")
    by = {p["name"]: p for p in result["phases"]}
    assert (
        by["cache-off"]["server"]["upstream_received"]
        > by["baseline"]["server"]["upstream_received"]
    )
    pods = by["replicas-3"]["server"]["per_pod"]
    assert sum(1 for v in pods.values() if v.get("received", 0) > 0) == 3
    assert (
        sum(1 for v in by["baseline"]["server"]["per_pod"].values() if v.get("received", 0) > 0)
        == 2
    )
    limited = by["concurrency-limit"]
    # past the limit the server sheds load: it answers REFUSED/SERVFAIL at once (as CoreDNS'
    # forward max_concurrent does) or drops the query (received, never answered); either
    # way nothing is dropped by conntrack, and the diagnosis names the server
    srv = limited["server"]
    shed = limited["dns"]["outcomes"].get("error", 0) + srv["received"] - srv["answered"]
    assert shed > 0
    assert limited["conntrack"]["drop"] == 0
    assert limited["agreement"]["node_dropped"] == 0
    assert limited["diagnosis"]["cause"] == "server-overload"
    assert by["baseline"]["dns"]["outcomes"].get("error", 0) == 0


def test_nodelocal_keeps_dns_healthy_while_the_table_is_full(run_scenario: RunScenario) -> None:
    result = run_scenario("scenarios/exhaustion-nodelocal.yaml")
    assert_expectations(result)
    base, local = result["phases"]
    assert local["conntrack"]["peak_fill"] >= 0.95  # the table is really full
    # far healthier than the baseline on the same full table: the confidence intervals part
    assert local["dns"]["timeout_rate_ci"]["high"] < base["dns"]["timeout_rate_ci"]["low"]
    # pod DNS made no conntrack entries (NOTRACK'ed on the node), unlike the baseline's
    assert local["conntrack"]["dns_entries"] == 0
    assert base["conntrack"]["dns_entries"] > 0
