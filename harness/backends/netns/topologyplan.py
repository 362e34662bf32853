"""Turn the planned cluster (:class:`harness.plan.types.ClusterPlan`) into a concrete topology:
names, addresses, links and Services (pure).

Address plan (each range checked against the host's routes before anything is built):

- pods: 10.244.<node>.<n>/32, routed veth, node side holds 169.254.1.1 with proxy ARP;
- nodes: 172.18.0.1<node>/32 on ``eth0`` towards the ``vpc`` router namespace (172.18.0.1);
- the control plane (etcd, kube-apiserver, kube-controller-manager): 172.18.0.2 behind the vpc
  router (:mod:`harness.backends.netns.k8s.controlplane`);
- Services: 10.96.0.0/16 (kube-dns 10.96.0.10, http-server 10.96.0.20);
- "the internet": 203.0.113.0/24 (TEST-NET-3) behind the vpc router: upstream DNS 203.0.113.53;
- NodeLocal DNSCache: 169.254.20.10 on each node.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from harness.plan.types import ClusterPlan

CLUSTER_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
NODE_CIDR = "172.18.0.0/24"
WORLD_CIDR = "203.0.113.0/24"
VPC_GW = "172.18.0.1"
POD_GW = "169.254.1.1"
DNS_SERVICE_IP = "10.96.0.10"
HTTP_SERVICE_IP = "10.96.0.20"
UPSTREAM_IP = "203.0.113.53"
NODELOCAL_IP = "169.254.20.10"
PREFIX = "cth-"
# every range the harness puts addresses in; none may overlap a host route
RANGES = (CLUSTER_CIDR, SERVICE_CIDR, NODE_CIDR, WORLD_CIDR, f"{NODELOCAL_IP}/32")


@dataclass(frozen=True)
class NodePlan:
    name: str
    ns: str
    index: int
    ip: str
    pod_cidr: str
    vpc_if: str


@dataclass(frozen=True)
class PodPlan:
    name: str
    role: str  # client | coredns | http | nodelocal
    ns: str
    node: str
    ip: str
    host_if: str


@dataclass(frozen=True)
class TopologyPlan:
    run_id: str
    prefix: str
    vpc_ns: str
    upstream_ns: str
    nodes: tuple[NodePlan, ...]
    pods: tuple[PodPlan, ...]
    namespace: str
    cluster_domain: str
    masquerade_all: bool
    external_names: dict[str, str] = field(default_factory=dict)
    upstream_latency_ms: float = 0.0

    @property
    def all_ns(self) -> list[str]:
        return [
            self.vpc_ns,
            self.upstream_ns,
            *(n.ns for n in self.nodes),
            *(p.ns for p in self.pods),
        ]

    def node(self, name: str) -> NodePlan:
        return next(n for n in self.nodes if n.name == name)

    def role(self, role: str) -> list[PodPlan]:
        return [p for p in self.pods if p.role == role]

    def pods_on(self, node: str) -> list[PodPlan]:
        return [p for p in self.pods if p.node == node]


def plan_topology(
    spec: ClusterPlan, run_id: str, *, max_coredns: int | None = None
) -> TopologyPlan:
    prefix = f"{PREFIX}{run_id}-"
    nodes = tuple(
        NodePlan(
            name=f"node-{i}",
            ns=f"{prefix}node-{i}",
            index=i,
            ip=f"172.18.0.{10 + i}",
            pod_cidr=f"10.244.{i}.0/24",
            vpc_if=f"node{i}",
        )
        for i in range(1, spec.nodes + 1)
    )
    placement: list[tuple[str, str, int]] = [
        ("client", spec.client_node, spec.client_pods),
        ("coredns", spec.coredns_node, max(spec.coredns_replicas, max_coredns or 0)),
        ("http", spec.http_node, spec.http_replicas),
    ]
    pods: list[PodPlan] = []
    per_node: dict[str, int] = {}
    for role, node_name, count in placement:
        node = next(n for n in nodes if n.name == node_name)
        for k in range(count):
            idx = per_node.get(node_name, 0) + 2  # .1 is never a pod
            per_node[node_name] = idx - 1
            pods.append(
                PodPlan(
                    name=f"{'http-server' if role == 'http' else role}-{k}",
                    role=role,
                    ns=f"{prefix}{role}-{k}",
                    node=node_name,
                    ip=f"10.244.{node.index}.{idx}",
                    host_if=f"cali{role[:3]}{k}",
                )
            )
    return TopologyPlan(
        run_id=run_id,
        prefix=prefix,
        vpc_ns=f"{prefix}vpc",
        upstream_ns=f"{prefix}upstream",
        nodes=nodes,
        pods=tuple(pods),
        namespace=spec.namespace,
        cluster_domain=spec.cluster_domain,
        masquerade_all=spec.masquerade_all,
        external_names=dict(spec.external_names),
        upstream_latency_ms=spec.upstream_latency_ms,
    )


def overlapping_routes(host_routes: list[str]) -> list[tuple[str, str]]:
    """(host route, harness range) pairs that overlap. ``default`` routes are ignored."""
    clashes = []
    for r in host_routes:
        if r in ("default", "0.0.0.0/0"):
            continue
        try:
            net = ipaddress.ip_network(r, strict=False)
        except ValueError:
            continue
        for ours in RANGES:
            if net.version == 4 and net.overlaps(ipaddress.ip_network(ours)):
                clashes.append((r, ours))
    return clashes
