"""NodeLocal DNSCache: NOTRACK'ed, so pod DNS makes no conntrack entry. Real node-cache adds
its own iptables rules; its labelled stand-in (node-cache cannot be built here) has the same
rules loaded as the one nft table every backend loads (``harness.dataplane.nodelocal``)."""

from __future__ import annotations

import pytest

from cthcommon.netns import run
from harness.backends.netns import topologyplan as P
from harness.backends.netns.k8s import nodecache
from harness.backends.netns.k8s.cluster import DNS_UPSTREAM_SERVICE_IP
from harness.backends.netns.levers import Levers
from harness.backends.netns.topology import Topology
from harness.backends.netns.topologyplan import plan_topology
from harness.dataplane import nodelocal
from harness.kernel.journal import Journal
from harness.plan.phase import plan_cluster
from harness.scenario.model import ClusterSpec
from tests.kernel.test_topology import query

pytestmark = pytest.mark.kernel


def test_pod_dns_via_nodelocal_creates_no_conntrack_entry(
    journal: Journal, host_unchanged: object
) -> None:
    with Topology(
        plan_topology(plan_cluster(ClusterSpec(nodes=2, client_pods=2)), journal.run_id), journal
    ) as topo:
        levers = Levers(topo)
        levers.enable_nodelocal()
        client = topo.plan.role("client")[0]
        node = topo.plan.node(client.node)
        link = run(["ip", "-d", "link", "show", nodelocal.INTERFACE], netns=node.ns).stdout
        assert levers.nodelocal_interface == "bridge"
        assert "bridge" in link
        assert nodelocal.LOCAL_IP in run(["ip", "addr"], netns=node.ns).stdout
        run(["conntrack", "-F"], netns=node.ns)
        names = [
            "http-server.default.svc.cluster.local",
            "kube-dns.kube-system.svc.cluster.local",
            "api.example.com",
            "nope.default.svc.cluster.local",
        ]
        for name in names * 5:
            for qtype in ("A", "AAAA"):
                query(client.ns, nodelocal.LOCAL_IP, name, qtype)
        listing = run(["conntrack", "-L"], netns=node.ns).stdout
        pod_dns = [
            ln for ln in listing.splitlines() if f"src={client.ip} " in ln and "dport=53" in ln
        ]
        assert pod_dns == [], pod_dns
        # cache misses went to kube-dns-upstream over TCP (node-cache's force_tcp), tracked
        assert any(
            "tcp" in ln and f"dst={DNS_UPSTREAM_SERVICE_IP}" in ln and "dport=53" in ln
            for ln in listing.splitlines()
        ), listing
        # node-cache's own iptables rules, or the stand-in's nft table (as the node lists them)
        stand_in = topo.k8s.nodelocal_kind == nodecache.STAND_IN
        rules = nodecache.notrack_rules(node.ns)
        for ip in (nodelocal.LOCAL_IP, P.DNS_SERVICE_IP):
            for proto in ("udp", "tcp"):
                if stand_in:
                    rule = f"ip daddr {ip} {proto} dport 53 notrack"
                else:
                    rule = f"-A PREROUTING -d {ip}/32 -p {proto} -m {proto} --dport 53 -j NOTRACK"
                assert rule in rules, rules
        levers.disable_nodelocal()
        # no NOTRACK rule left in iptables' raw table, and no stand-in table either
        assert nodecache.notrack_rules(node.ns) == []
        assert (
            run(["ip", "link", "show", nodelocal.INTERFACE], netns=node.ns, check=False).returncode
            != 0
        )
