from __future__ import annotations

import pytest

from harness.backends.netns.kubeproxy import ProxyState, node_rules
from harness.backends.netns.plan import plan_topology
from harness.errors import BackendError
from harness.plan.types import KubeProxyPlan
from harness.scenario.model import ClusterSpec, CoreDNSSpec

PLAN = plan_topology(ClusterSpec(coredns=CoreDNSSpec(replicas=3)), "t")
IPT = KubeProxyPlan("iptables", masquerade_all=True)


def dns_endpoints(rules: str) -> int:
    return sum(1 for ln in rules.splitlines() if "--to-destination" in ln and ":53" in ln)


def test_rules_follow_the_replicas_in_service_and_nodelocal() -> None:
    three = node_rules(PLAN, ProxyState(IPT, coredns_replicas=3))
    one = node_rules(PLAN, ProxyState(IPT, coredns_replicas=1))
    assert dns_endpoints(three) == 3 * dns_endpoints(one) > 0  # udp and tcp per replica
    assert "NOTRACK" not in three
    local = node_rules(PLAN, ProxyState(IPT, coredns_replicas=3, nodelocal=True))
    assert local.count("-j NOTRACK") == 6
    assert "-A INPUT -d 169.254.20.10/32 -p udp -m udp --dport 53 -j ACCEPT" in local


def test_only_iptables_mode_is_rendered() -> None:
    with pytest.raises(BackendError):
        node_rules(PLAN, ProxyState(KubeProxyPlan("nftables", True), coredns_replicas=1))
