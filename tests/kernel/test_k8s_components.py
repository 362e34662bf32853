"""The real upstream Kubernetes parts on the netns topology: control plane, kube-proxy (both
modes), CoreDNS and node-cache. One cluster per mode (module scope: the control plane's start
is paid once), and nothing may be left on the host afterwards."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dns.message
import dns.rcode
import dns.rdatatype
import pytest

from cthcommon.netns import run, socket_in
from harness.backends.netns.k8s import cluster as C
from harness.backends.netns.k8s import nodecache
from harness.backends.netns.topology import Topology
from harness.backends.netns.topologyplan import plan_topology
from harness.dataplane.nodelocal import LOCAL_IP
from harness.kernel import sysctl
from harness.kernel.journal import HostLock, Journal
from harness.plan.phase import plan_cluster
from harness.plan.types import KubeProxyPlan
from harness.scenario.model import ClusterSpec, CoreDNSSpec
from harness.upstream import ComponentMissing, locate
from tests.kernel.conftest import HostSnapshot

pytestmark = pytest.mark.kernel

NEEDED = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-proxy", "coredns")
CT_TIMEOUT = "net.netfilter.nf_conntrack_tcp_timeout_established"


def _missing() -> list[str]:
    out = []
    for b in NEEDED:
        try:
            locate(b)
        except ComponentMissing:
            out.append(b)
    return out


def query(ns: str, server: str, name: str, qtype: str = "A") -> dns.message.Message:
    q = dns.message.make_query(name, qtype)
    s = socket_in(ns)
    s.setblocking(True)
    s.settimeout(3)
    try:
        s.sendto(q.to_wire(), (server, 53))
        return dns.message.from_wire(s.recvfrom(4096)[0])
    finally:
        s.close()


def addresses(m: dns.message.Message) -> list[str]:
    return [str(r) for rr in m.answer for r in rr if rr.rdtype == dns.rdatatype.A]


class Cluster:
    def __init__(self, topo: Topology) -> None:
        self.topo = topo
        self.parts = topo.k8s


@pytest.fixture(scope="module", params=["iptables", "nftables"])
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    missing = _missing()
    if missing:
        pytest.skip(f"upstream components not built yet: {missing}")
    before = HostSnapshot.take()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONNTRACK_HARNESS_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        with HostLock(wait_s=60):
            j = Journal.create(os.urandom(3).hex())
            spec = ClusterSpec(nodes=2, client_pods=2, coredns=CoreDNSSpec(replicas=2))
            plan = plan_topology(plan_cluster(spec), j.run_id)
            proxy = KubeProxyPlan(request.param, plan.masquerade_all)
            with Topology(plan, j, kube_proxy=proxy) as topo:
                print(f"k8s parts timings ({request.param}): {topo.k8s.timings}")
                print(f"control plane timings: {topo.k8s.cp.timings.marks}")
                yield Cluster(topo)
            j.close()
    leftovers = HostSnapshot.take().leftovers_since(before)
    assert not leftovers, leftovers
    for b in NEEDED:
        exe = str(locate(b))
        running = [p for p in Path("/proc").glob("[0-9]*/exe") if _readlink(p) == exe]
        assert not running, f"{b} still running: {running}"


def _readlink(p: Path) -> str:
    try:
        return os.readlink(p)
    except OSError:
        return ""


def test_endpointslices_come_from_the_controller(cluster: Cluster) -> None:
    plan = cluster.parts.plan
    slices = cluster.parts.api.list(
        "discovery.k8s.io/v1",
        "EndpointSlice",
        "kube-system",
        label_selector="kubernetes.io/service-name=kube-dns",
    )
    assert slices
    assert {s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] for s in slices} == {
        "endpointslice-controller.k8s.io"
    }
    got = {a for s in slices for e in s["endpoints"] for a in e["addresses"]}
    assert got == {p.ip for p in plan.role("coredns")}


def test_kube_proxy_writes_its_own_rules_and_leaves_conntrack_alone(cluster: Cluster) -> None:
    node = cluster.parts.plan.nodes[0]
    rules = cluster.parts.node_rules(node.ns)
    if cluster.parts.settings.kube_proxy.mode == "iptables":
        assert f":{C.KUBE_DNS_UDP_CHAIN}" in rules
        assert "KUBE-SERVICES" in rules
    else:
        assert "table ip kube-proxy" in rules
        assert "10.96.0.10" in rules
    # a pod's namespace has the kernel's per-namespace default; kube-proxy's own default
    # (tcpEstablishedTimeout 24h) would differ from it
    pod = cluster.parts.plan.role("client")[0]
    for n in cluster.parts.plan.nodes:
        assert sysctl.read(CT_TIMEOUT, n.ns) == sysctl.read(CT_TIMEOUT, pod.ns)


def test_client_resolves_service_names_through_the_cluster_ip(cluster: Cluster) -> None:
    plan = cluster.parts.plan
    client = plan.role("client")[0]
    before = cluster.parts.coredns_counts()
    name = f"http-server.{plan.namespace}.svc.{plan.cluster_domain}"
    m = query(client.ns, C.DNS_SERVICE_IP, name)
    assert m.rcode() == dns.rcode.NOERROR
    assert addresses(m) == [C.HTTP_SERVICE_IP]
    # the real glibc resolver in the pod, with the pod's resolv.conf (nameserver 10.96.0.10)
    out = subprocess.run(
        ["ip", "netns", "exec", client.ns, "getent", "ahostsv4", name],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert C.HTTP_SERVICE_IP in out.stdout
    after = cluster.parts.coredns_counts()
    got = sum(after[k].requests - before[k].requests for k in after)
    assert got >= 2
    assert sum(after[k].responses - before[k].responses for k in after) >= 2


def test_external_names_go_to_the_upstream_in_the_topology(cluster: Cluster) -> None:
    plan = cluster.parts.plan
    client = plan.role("client")[0]
    name, ip = next(iter(plan.external_names.items()))
    m = query(client.ns, C.DNS_SERVICE_IP, name)
    assert addresses(m) == [ip]


def test_node_cache_notrack_keeps_pod_dns_out_of_conntrack(cluster: Cluster) -> None:
    plan = cluster.parts.plan
    client = plan.role("client")[0]
    node = plan.node(client.node)
    name = f"http-server.{plan.namespace}.svc.{plan.cluster_domain}"
    cluster.parts.enable_nodelocal()
    try:
        rules = nodecache.notrack_rules(node.ns)
        assert any(LOCAL_IP in r for r in rules), rules
        run(["conntrack", "-F"], netns=node.ns, check=False)
        for server in (LOCAL_IP, C.DNS_SERVICE_IP):
            for _ in range(5):
                assert addresses(query(client.ns, server, name)) == [C.HTTP_SERVICE_IP]
        entries = run(
            ["conntrack", "-L", "-s", client.ip, "-p", "udp", "--dport", "53"],
            netns=node.ns,
            check=False,
        ).stdout
        assert entries.strip() == ""
        corefile = (cluster.parts.comps.dir / f"node-cache-{node.name}" / "Corefile").read_text()
        assert f"forward . {C.DNS_UPSTREAM_SERVICE_IP}" in corefile
        assert f"forward . {C.UPSTREAM_DNS}" in corefile or "/etc/resolv.conf" in corefile
    finally:
        cluster.parts.disable_nodelocal()
    assert not [r for r in nodecache.notrack_rules(node.ns) if LOCAL_IP in r]
    # back through kube-proxy: the query is tracked again
    run(["conntrack", "-F"], netns=node.ns, check=False)
    assert addresses(query(client.ns, C.DNS_SERVICE_IP, name)) == [C.HTTP_SERVICE_IP]
    entries = run(
        ["conntrack", "-L", "-s", client.ip, "-p", "udp", "--dport", "53"], netns=node.ns
    ).stdout
    assert client.ip in entries
