"""The netns backend's data path on the real kernel."""

from __future__ import annotations

import socket

import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from cthcommon.netns import run, socket_in
from harness.backends.netns import topologyplan as P
from harness.backends.netns.topology import Topology
from harness.backends.netns.topologyplan import plan_topology
from harness.kernel.journal import Journal
from harness.plan.phase import plan_cluster
from harness.scenario.model import ClusterSpec, CoreDNSSpec

pytestmark = pytest.mark.kernel


def query(ns: str, server: str, name: str, qtype: str = "A") -> dns.message.Message:
    q = dns.message.make_query(name, qtype)
    s = socket_in(ns)
    s.settimeout(2)
    try:
        s.sendto(q.to_wire(), (server, 53))
        return dns.message.from_wire(s.recvfrom(4096)[0])
    finally:
        s.close()


def http_get(ns: str, ip: str) -> bytes:
    s = socket_in(ns, socket.AF_INET, socket.SOCK_STREAM)
    s.setblocking(True)
    s.settimeout(2)
    try:
        s.connect((ip, 80))
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return s.recv(256)
    finally:
        s.close()


@pytest.fixture
def topo(journal: Journal, host_unchanged: object):
    spec = ClusterSpec(nodes=2, client_pods=2, coredns=CoreDNSSpec(replicas=2))
    with Topology(plan_topology(plan_cluster(spec), journal.run_id), journal) as t:
        yield t


def test_cluster_dns_answers_service_names_nodata_and_nxdomain(topo: Topology) -> None:
    client = topo.plan.role("client")[0].ns
    a = query(client, P.DNS_SERVICE_IP, "http-server.default.svc.cluster.local", "A")
    assert [str(r) for rr in a.answer for r in rr] == [P.HTTP_SERVICE_IP]
    aaaa = query(client, P.DNS_SERVICE_IP, "http-server.default.svc.cluster.local", "AAAA")
    assert aaaa.rcode() == dns.rcode.NOERROR
    assert not aaaa.answer
    nx = query(client, P.DNS_SERVICE_IP, "nope.default.svc.cluster.local")
    assert nx.rcode() == dns.rcode.NXDOMAIN
    ext = query(client, P.DNS_SERVICE_IP, "api.example.com")  # forwarded to the upstream ns
    assert [str(r) for rr in ext.answer for r in rr] == ["203.0.113.80"]
    ext_nx = query(client, P.DNS_SERVICE_IP, "unknown.example.org")
    assert ext_nx.rcode() == dns.rcode.NXDOMAIN


def test_clusterip_is_dnat_and_masqueraded_in_the_client_node(topo: Topology) -> None:
    client = topo.plan.role("client")[0]
    node = topo.plan.node(client.node)
    assert http_get(client.ns, P.HTTP_SERVICE_IP).startswith(b"HTTP/1.1 200")
    entries = run(["conntrack", "-L", "-p", "tcp", "--dport", "80"], netns=node.ns).stdout
    http_pod = topo.plan.role("http")[0]
    # original dst is the ClusterIP; the reply comes from the pod to the node's IP (SNAT)
    line = next(ln for ln in entries.splitlines() if f"dst={P.HTTP_SERVICE_IP}" in ln)
    assert f"src={http_pod.ip} dst={node.ip}" in line


def test_kube_proxy_spreads_dns_over_both_replicas(topo: Topology) -> None:
    """Counted by each CoreDNS replica itself (its Prometheus metrics)."""
    client = topo.plan.role("client")[0].ns
    before = topo.k8s.coredns_counts()
    for i in range(60):
        query(client, P.DNS_SERVICE_IP, f"q{i}.default.svc.cluster.local")
    after = topo.k8s.coredns_counts()
    per_pod = [after[k].requests - before[k].requests for k in after]
    assert len(per_pod) == 2
    assert all(n >= 10 for n in per_pod), per_pod  # 60 queries, p=1/2 each: ~30 +- 12
    assert sum(per_pod) >= 60


def test_resolv_conf_is_the_pods_own_for_real_glibc(topo: Topology) -> None:
    client = topo.plan.role("client")[0].ns
    out = run(["getent", "ahostsv4", "http-server.default.svc.cluster.local"], netns=client)
    assert P.HTTP_SERVICE_IP in out.stdout
    assert run(["cat", "/etc/resolv.conf"], netns=client).stdout.startswith(
        f"nameserver {P.DNS_SERVICE_IP}"
    )


def test_failed_build_cleans_up_what_it_started(
    journal: Journal, host_unchanged: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = plan_topology(plan_cluster(ClusterSpec(nodes=2, client_pods=1)), journal.run_id)
    topo = Topology(plan, journal)

    def boom() -> None:
        raise RuntimeError("injected failure after the servers started")

    monkeypatch.setattr(topo, "_resolv_confs", boom)
    with pytest.raises(RuntimeError, match="injected failure"):
        topo.__enter__()
    assert all(not p.alive() for p in topo.procs.values())
    assert topo.k8s.cp.procs  # the control plane had started, and is stopped again
    assert all(not p.alive() for p in topo.k8s.cp.procs.values())
