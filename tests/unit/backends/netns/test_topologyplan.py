from __future__ import annotations

import ipaddress

from harness.backends.netns.topologyplan import overlapping_routes, plan_topology
from harness.plan.phase import plan_cluster
from harness.scenario.model import ClusterSpec, CoreDNSSpec


def test_plan_places_pods_and_gives_unique_addresses_and_names() -> None:
    spec = ClusterSpec(nodes=3, client_pods=5, coredns=CoreDNSSpec(replicas=2))
    plan = plan_topology(plan_cluster(spec), "a1b2c3", max_coredns=3)
    ips = [p.ip for p in plan.pods] + [n.ip for n in plan.nodes]
    assert len(set(ips)) == len(ips)
    assert len(set(plan.all_ns)) == len(plan.all_ns)
    assert all(ns.startswith("cth-a1b2c3-") for ns in plan.all_ns)
    assert {p.node for p in plan.role("client")} == {"node-1"}
    assert {p.node for p in plan.role("coredns")} == {"node-3"}
    assert len(plan.role("coredns")) == 3  # room for the largest replica count of any phase
    for node in plan.nodes:
        net = ipaddress.ip_network(node.pod_cidr)
        assert all(ipaddress.ip_address(p.ip) in net for p in plan.pods_on(node.name))
        assert len({p.host_if for p in plan.pods_on(node.name)}) == len(plan.pods_on(node.name))
        assert all(len(p.host_if) <= 15 for p in plan.pods_on(node.name))


def test_overlap_with_host_routes_is_detected() -> None:
    assert overlapping_routes(["default", "192.0.2.0/24"]) == []
    clashes = overlapping_routes(["10.0.0.0/8", "172.18.0.0/16"])
    assert ("10.0.0.0/8", "10.244.0.0/16") in clashes
    assert ("172.18.0.0/16", "172.18.0.0/24") in clashes
