"""The node and server DNS counters mean what they say (issue 13, section 2).

- Queries delivered on the node to NodeLocal DNSCache (169.254.20.10) are not lost.
- DNS over TCP (glibc ``use-vc``; NodeLocal's TCP upstream to kube-dns) shows in the servers'
  received/answered counts and in the node counters.
"""

from __future__ import annotations

from typing import Any

import pytest

from harness import runner
from harness.results.schema import PhaseResult
from harness.scenario.model import Scenario

pytestmark = pytest.mark.kernel


def run_phase(phase: dict[str, Any], dns: dict[str, Any]) -> PhaseResult:
    doc = {
        "name": "dns-counters",
        "cluster": {"nodes": 2, "client_pods": 2, "coredns": {"replicas": 1}},
        "load": {"duration_s": 3, "http": None, "dns": dns},
        "phases": [phase],
    }
    result = runner.run_scenario(Scenario.model_validate(doc), backend="netns")
    return result["phases"][0]


def test_nodelocal_queries_are_delivered_not_lost(host_unchanged: object) -> None:
    """Every lookup answered by NodeLocal: the node counted the queries as delivered
    locally, none as dropped. Unique names miss the cache, so NodeLocal forwards them to
    kube-dns over TCP: CoreDNS counts them as received and answered."""
    p = run_phase(
        {"name": "nodelocal", "remediations": ["nodelocal-dns"]},
        {"rate": 40, "resolver": "glibc", "names": ["x{n}.http-server", "http-server"]},
    )
    dns = p["dns"]
    assert dns["lookups"] > 50
    assert dns["timeouts"] == 0
    assert p["node"]["dns_local"] >= dns["queries_sent"]
    assert p["node"]["dns_dropped"] == 0
    assert p["agreement"]["node_dropped"] == 0
    # NodeLocal's cache misses, over TCP to the kube-dns ClusterIP
    assert p["server"]["received"] > 0
    assert p["server"]["answered"] > 0


def test_dns_over_tcp_is_counted(host_unchanged: object) -> None:
    """glibc with use-vc: every query goes over TCP. The node sees them enter and leave,
    the DNS pod receives and answers them."""
    p = run_phase(
        {
            "name": "use-vc",
            "remediations": [{"kind": "resolver-option", "options": [{"name": "use-vc"}]}],
        },
        {"rate": 40, "resolver": "glibc", "names": ["http-server"]},
    )
    dns = p["dns"]
    assert dns["lookups"] > 50
    assert dns["timeouts"] == 0
    # at least one data segment per lookup each way (glibc may write A and AAAA at once)
    assert p["node"]["dns_in"] >= dns["lookups"]
    assert p["node"]["dns_dropped"] == 0
    assert p["server"]["received"] >= dns["lookups"]
    assert p["server"]["answered"] >= dns["lookups"]
