"""The real Kubernetes parts on a built netns topology, as one context manager.

Order: control plane (attached to the vpc router) -> the kubelet's objects (Nodes, Services,
Pods with status) -> kube-proxy on every node -> CoreDNS in the CoreDNS pods. Everything is
undone in reverse on every exit path; a failure halfway undoes what was started.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import dns.message
import dns.rcode

from harness.backends.netns.k8s import coredns, kubeproxy, nodecache
from harness.backends.netns.k8s import pki as K
from harness.backends.netns.k8s.client import ApiClient
from harness.backends.netns.k8s.controlplane import ControlPlane, ControlPlaneConfig
from harness.backends.netns.k8s.kubelet import (
    COREDNS_LABELS,
    COREDNS_SA,
    SYSTEM,
    Kubelet,
    Port,
    coredns_rbac,
    kube_dns_service,
    kube_dns_upstream_service,
    pod,
    service,
)
from harness.backends.netns.k8s.procs import Components
from harness.backends.netns.k8s.wait import wait_for
from harness.backends.netns.plan import TopologyPlan
from harness.errors import BackendError
from harness.kernel.journal import Journal
from harness.kernel.netns import run, socket_in
from harness.upstream import locate, release

DNS_SERVICE_IP = "10.96.0.10"
DNS_UPSTREAM_SERVICE_IP = "10.96.0.11"
HTTP_SERVICE_IP = "10.96.0.20"
UPSTREAM_DNS = "203.0.113.53"
KUBE_DNS_UDP_CHAIN = "KUBE-SVC-TCOU7JCQXEZGVUNU"  # kube-system/kube-dns:dns (UDP)
COREDNS_IMAGE = "registry.k8s.io/coredns/coredns"


def dns_probe(ns: str, server: str, name: str, timeout: float = 0.5) -> str | None:
    """One A query from namespace ``ns``: None when answered NOERROR, else why not."""
    q = dns.message.make_query(name, "A")
    s = socket_in(ns, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setblocking(True)
        s.settimeout(timeout)
        s.sendto(q.to_wire(), (server, 53))
        r = dns.message.from_wire(s.recvfrom(4096)[0])
    finally:
        s.close()
    return None if r.rcode() == dns.rcode.NOERROR and r.answer else f"rcode {r.rcode()}"


@dataclass
class K8sSettings:
    kube_proxy: kubeproxy.KubeProxySettings = field(default_factory=kubeproxy.KubeProxySettings)
    corefile: str | None = None  # None: kubeadm's for the cluster domain
    kubernetes: str | None = None  # pinned version (None: the versions file's default)


class K8sParts:
    """Control plane, kubelet objects, kube-proxy and CoreDNS for one topology plan."""

    def __init__(
        self, plan: TopologyPlan, journal: Journal, workdir: Path, settings: K8sSettings
    ) -> None:
        self.plan = plan
        self.journal = journal
        self.workdir = workdir
        self.settings = settings
        self.cp = ControlPlane(
            ControlPlaneConfig(
                run_id=plan.run_id,
                ns=f"{plan.prefix}cp",
                vpc_ns=plan.vpc_ns,
                cluster_domain=plan.cluster_domain,
                kubernetes=settings.kubernetes,
            ),
            journal,
            workdir,
        )
        self.comps = Components(journal, workdir)
        self._stack = ExitStack()
        self._api: ApiClient | None = None
        self.kubelet: Kubelet | None = None
        self.nodelocal = False
        self.timings: dict[str, float] = {}

    # --- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> K8sParts:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stack.close()

    @property
    def api(self) -> ApiClient:
        assert self._api is not None, "not started"
        return self._api

    def _start(self) -> None:
        t0 = time.monotonic()
        bins = {b: locate(b, self.settings.kubernetes) for b in ("kube-proxy", "coredns")}
        self._stack.enter_context(self.cp)
        self.timings["control_plane"] = time.monotonic() - t0
        self._api = self._stack.enter_context(self.cp.client())
        self.kubelet = Kubelet(self._api, self.plan.run_id)
        self._stack.callback(self._cleanup_api)
        self._stack.enter_context(self.comps)  # stopped before the API objects go
        self._objects()
        self.timings["objects"] = time.monotonic() - t0
        for node in self.plan.nodes:
            kubeproxy.start(
                self.comps,
                bins["kube-proxy"],
                node_name=node.name,
                node_ns=node.ns,
                kubeconfig=self.cp.pki.kubeconfig(K.KUBE_PROXY),
                settings=self.settings.kube_proxy,
            )
        corefile = self.settings.corefile or coredns.kubeadm_corefile(self.plan.cluster_domain)
        for p in self.plan.role("coredns"):
            coredns.start(
                self.comps,
                bins["coredns"],
                pod_name=p.name,
                pod_ns=p.ns,
                corefile=corefile,
                kubeconfig=self.cp.pki.kubeconfig(K.COREDNS),
                upstreams=[UPSTREAM_DNS],
            )
        for node in self.plan.nodes:
            kubeproxy.wait_ready(self.comps.procs[kubeproxy.proc_name(node.name)], node.ns)
        for p in self.plan.role("coredns"):
            coredns.wait_ready(self.comps.procs[coredns.proc_name(p.name)], p.ns, p.ip)
        self._wait_data_path()
        self.timings["ready"] = time.monotonic() - t0

    def _wait_data_path(self) -> None:
        """Until the controller's EndpointSlices exist and a client pod gets an answer through
        the kube-dns ClusterIP (kube-proxy has written the endpoints' rules)."""
        k = self.kubelet
        assert k is not None
        k.wait_endpoints("kube-dns", SYSTEM, {p.ip for p in self.plan.role("coredns")})
        k.wait_endpoints("http-server", self.plan.namespace, {p.ip for p in self.plan.role("http")})
        clients = self.plan.role("client")
        if not clients:
            return
        name = f"kube-dns.{SYSTEM}.svc.{self.plan.cluster_domain}"
        procs = list(self.comps.procs.values())
        wait_for(
            f"an answer for {name} through {DNS_SERVICE_IP} from {clients[0].name}",
            lambda: dns_probe(clients[0].ns, DNS_SERVICE_IP, name),
            timeout_s=20,
            procs=procs,
        )

    def _cleanup_api(self) -> None:
        """Delete what this run labelled. The control plane goes right after, so an
        apiserver that is already gone is no reason to fail the teardown."""
        if self.kubelet is not None:
            with contextlib.suppress(BackendError):
                self.kubelet.cleanup()

    def _objects(self) -> None:
        k = self.kubelet
        assert k is not None
        rid = self.plan.run_id
        for obj in coredns_rbac(rid):
            k.create(obj)
        for node in self.plan.nodes:
            k.register_node(node.name, node.ip, node.pod_cidr)
        if self.plan.namespace not in ("default", SYSTEM):
            k.ensure_namespace(self.plan.namespace)
            wait_for(
                f"the default service account of {self.plan.namespace}",
                lambda: (
                    None
                    if self.api.get("v1", "ServiceAccount", "default", self.plan.namespace)
                    else "absent"
                ),
                timeout_s=20,
            )
        k.create(kube_dns_service(DNS_SERVICE_IP, rid))
        k.create(kube_dns_upstream_service(DNS_UPSTREAM_SERVICE_IP, rid))
        k.create(
            service(
                "http-server",
                self.plan.namespace,
                cluster_ip=HTTP_SERVICE_IP,
                ports=[Port("http", 80)],
                selector={"app": "http-server"},
                run_id=rid,
            )
        )
        coredns_image = f"{COREDNS_IMAGE}:{release(self.settings.kubernetes).coredns}"
        for p in self.plan.pods:
            host_ip = self.plan.node(p.node).ip
            if p.role == "coredns":
                obj = pod(
                    p.name, SYSTEM, p.node, rid, role="coredns", labels=COREDNS_LABELS,
                    image=coredns_image, service_account=COREDNS_SA, dns_policy="Default",
                    ports=[Port("dns", 53, "UDP"), Port("dns-tcp", 53), Port("metrics", 9153)],
                )  # fmt: skip
            elif p.role == "http":
                obj = pod(
                    p.name, self.plan.namespace, p.node, rid, role="http-server",
                    labels={"app": "http-server"}, ports=[Port("http", 80)],
                )  # fmt: skip
            else:
                obj = pod(p.name, self.plan.namespace, p.node, rid, role=p.role)
            k.run_pod(obj, p.ip, host_ip)

    # --- queries ---------------------------------------------------------------------------
    def components(self) -> dict[str, dict[str, str]]:
        from harness.backends.netns.k8s.controlplane import component_info

        out = self.cp.components()
        for b in ("kube-proxy", "coredns", "node-cache"):
            out[b] = component_info(b, self.settings.kubernetes)
        return out

    def coredns_counts(self) -> dict[str, coredns.Counts]:
        return {p.name: coredns.read_counts(p.ns, p.ip) for p in self.plan.role("coredns")}

    def node_rules(self, node_ns: str) -> str:
        """kube-proxy's own rules on a node: iptables-save, or the nft ruleset."""
        if self.settings.kube_proxy.mode == "nftables":
            return run(["nft", "list", "ruleset"], netns=node_ns).stdout
        return run(["iptables-save"], netns=node_ns).stdout

    # --- NodeLocal DNSCache ------------------------------------------------------------------
    def enable_nodelocal(self) -> None:
        if self.nodelocal:
            return
        binary = locate("node-cache", self.settings.kubernetes)
        self.nodelocal = True
        try:
            for node in self.plan.nodes:
                proc = nodecache.start(
                    self.comps,
                    binary,
                    node_name=node.name,
                    node_ns=node.ns,
                    domain=self.plan.cluster_domain,
                    kube_dns_ip=DNS_SERVICE_IP,
                    upstream_service_ip=DNS_UPSTREAM_SERVICE_IP,
                    upstreams=[UPSTREAM_DNS],
                )
                nodecache.wait_ready(proc, node.ns)
        except BaseException:
            self.disable_nodelocal()
            raise

    def disable_nodelocal(self) -> None:
        if not self.nodelocal:
            return
        for node in self.plan.nodes:
            nodecache.stop(self.comps, node.name, node.ns)
        self.nodelocal = False


@contextmanager
def k8s_parts(
    plan: TopologyPlan, journal: Journal, workdir: Path, settings: K8sSettings | None = None
) -> Iterator[K8sParts]:
    with K8sParts(plan, journal, workdir, settings or K8sSettings()) as parts:
        yield parts
