"""The typed, frozen phase plan: what one phase means, decided once for every backend.

A backend realizes these values and decides nothing again. Addresses that only a backend
knows (the kube-dns ClusterIP of a real cluster, the run's namespace there) stay symbolic
here: nameservers are ``cluster-dns``/``nodelocal``/literal IPs, and names and search domains
are written in the scenario's own namespace (a kube backend maps them onto its run namespace).

Nothing here imports :mod:`harness.scenario` (the scenario package imports these types, and
:mod:`harness.plan.phase` turns a scenario into them), so a backend that reads only plans
never depends on the scenario language.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from cthcommon.resolvconf import ResolvConf

CLUSTER_DNS = "cluster-dns"
NODELOCAL = "nodelocal"
NODELOCAL_IP = "169.254.20.10"

ResolverModel = Literal["glibc", "musl", "go", "sequential", "c-ares"]
DNSPattern = Literal["constant", "burst", "ramp"]
DNSFamily = Literal["any", "ipv4"]
HTTPMode = Literal["short-lived", "server-close", "pooled"]
KubeProxyMode = Literal["iptables", "nftables"]


@dataclass(frozen=True)
class PodDNS:
    """A client pod's resolver settings as kubelet resolves them (ClusterFirst + dnsConfig)."""

    nameservers: tuple[str, ...]  # "cluster-dns", "nodelocal" or an IP; deduplicated, <= 3
    searches: tuple[str, ...]  # in the scenario's namespace
    options: tuple[tuple[str, str | None], ...]  # in kubelet's merge order, one per name

    def addresses(self, cluster_dns_ip: str, nodelocal_ip: str = NODELOCAL_IP) -> tuple[str, ...]:
        """The nameserver addresses, with the symbolic ones resolved (deduplicated)."""
        table = {CLUSTER_DNS: cluster_dns_ip, NODELOCAL: nodelocal_ip}
        return tuple(dict.fromkeys(table.get(ns, ns) for ns in self.nameservers))

    def resolv_conf(self, cluster_dns_ip: str, *, nodelocal_ip: str = NODELOCAL_IP) -> ResolvConf:
        """What kubelet writes into the pod's /etc/resolv.conf."""
        return ResolvConf.build(
            self.addresses(cluster_dns_ip, nodelocal_ip), self.searches, dict(self.options)
        )


@dataclass(frozen=True)
class DNSLoadPlan:
    """The phase's DNS load. ``names`` is what is looked up, in the order the engine cycles
    through them: ``{n}`` already expanded and the FQDN rule already applied."""

    resolver: ResolverModel
    rate: float
    names: tuple[str, ...]
    group: int  # names per ``{n}`` index (len(names) when nothing was expanded)
    expanded: bool  # a name had ``{n}``: every index is a distinct name
    pattern: DNSPattern
    burst_on_s: float
    burst_off_s: float
    workers: int
    lookups_per_process: int
    family: DNSFamily = "any"  # "ipv4": A only (AF_INET / Go "ip4")

    def names_for(self, index: int, count: int) -> tuple[str, ...]:
        """The names the ``index``-th of ``count`` load clients looks up: with ``{n}``, every
        client gets its own indices (no name is looked up twice across clients), else all."""
        if not self.expanded or count <= 1:
            return self.names
        groups = [self.names[i : i + self.group] for i in range(0, len(self.names), self.group)]
        mine = [n for g in groups[index::count] for n in g]
        return tuple(mine) or groups[index % len(groups)]


@dataclass(frozen=True)
class HTTPLoadPlan:
    """The phase's HTTP load (the pooling remediation already folded in)."""

    mode: HTTPMode
    rate: float
    pool_size: int
    connect_timeout_s: float
    max_in_flight: int
    workers: int


@dataclass(frozen=True)
class LocustLoadPlan:
    """The phase's HTTP load as the user's own Locust file (the alternative to the raw
    client): ``users`` Locust users, spread over the client pods, against the http-server
    Service. ``locustfile`` is an absolute path; ``user_classes`` empty means all of them."""

    locustfile: str
    users: int
    spawn_rate: float
    user_classes: tuple[str, ...] = ()


@dataclass(frozen=True)
class SamePortUDPPlan:
    """One connected UDP socket per client pod, DNS queries for ``name`` to the kube-dns
    ClusterIP at ``rate`` per pod per second (``harness.scenario.model.SamePortUDP``)."""

    rate: float
    name: str
    timeout_s: float


@dataclass(frozen=True)
class StatsdLoadPlan:
    """One unconnected UDP socket per client pod sending a statsd line to the kube-dns
    ClusterIP at ``rate`` per pod per second (``harness.scenario.model.StatsdLoad``)."""

    rate: float


@dataclass(frozen=True)
class LoadPlan:
    duration_s: float
    dns: DNSLoadPlan | None
    http: HTTPLoadPlan | None  # the raw client (the default: maximum churn)
    locust: LocustLoadPlan | None = None  # or a locustfile; never both
    udp: SamePortUDPPlan | None = None  # the same-port client, alongside the rest
    statsd: StatsdLoadPlan | None = None  # the one-way sender, alongside the rest
    # how the phase reaches its steady state: the aged warm-up where the model needs one
    # ("aged"), or a natural start ("none")
    warmup: Literal["aged", "none"] = "aged"


@dataclass(frozen=True)
class SysctlPlan:
    """Node conntrack sysctls. ``conntrack_max``/``buckets`` are global (the host's, or the
    node's on a real cluster); ``per_node`` are per network namespace, by full name."""

    conntrack_max: int | None = None
    buckets: int | None = None
    per_node: tuple[tuple[str, int], ...] = ()

    def __bool__(self) -> bool:
        return self.conntrack_max is not None or self.buckets is not None or bool(self.per_node)

    def global_values(self) -> dict[str, int]:
        out: dict[str, int] = {}
        if self.conntrack_max is not None:
            out[CONNTRACK_MAX] = self.conntrack_max
        if self.buckets is not None:
            out[CONNTRACK_BUCKETS] = self.buckets
        return out


CT = "net.netfilter."
CONNTRACK_MAX = CT + "nf_conntrack_max"
CONNTRACK_BUCKETS = CT + "nf_conntrack_buckets"
CONNTRACK_ACCT = CT + "nf_conntrack_acct"


@dataclass(frozen=True)
class RaceFaultPlan:
    """INJECTED race window (``harness.dataplane.faults``).

    ``nodes`` are the scenario nodes whose forward hook gets the rule: the client pods' nodes,
    where the client's DNS is DNATed and its entry inserted. A node downstream only forwards
    the pair, so a rule there too would drop the same pair twice and inflate P.
    """

    probability: float  # as the scenario wrote it (reported)
    percent: int  # what the rule drops: 1..100 (the one rounding rule)
    pin_cpus: bool
    nodes: tuple[str, ...]
    injected: Literal[True] = True


@dataclass(frozen=True)
class CoreDNSPlan:
    cache: bool | None  # None: as the user's Corefile has it (no edit)
    max_concurrent: int | None
    replicas: int
    corefile: str | None = None  # the user's Corefile (absolute path); None: kubeadm's


@dataclass(frozen=True)
class KubeProxyPlan:
    mode: KubeProxyMode
    masquerade_all: bool
    version: str | None = None  # the pinned Kubernetes release (None: versions.toml default)


@dataclass(frozen=True)
class RolloutPlan:
    """Roll every running CoreDNS pod to a new one (new IP), one at a time, ``at_s`` seconds
    after the load generator starts (``harness.scenario.model.CoreDNSRollout``)."""

    at_s: float


@dataclass(frozen=True)
class ScalePlan:
    """Scale ``deployment`` to ``replicas`` ``at_s`` seconds after the load generator starts
    (``harness.scenario.model.PhaseEvent``)."""

    at_s: float
    deployment: str
    replicas: int


@dataclass(frozen=True)
class KubeProxyRestartPlan:
    """Restart kube-proxy on ``node`` (SIGTERM, then the same binary and flags again)."""

    at_s: float
    node: str


@dataclass(frozen=True)
class ServiceRecreatePlan:
    """Delete ``service`` (namespace/name) through the API; create it again with the same spec
    ``down_s`` later."""

    at_s: float
    service: str
    down_s: float


EventPlan = ScalePlan | KubeProxyRestartPlan | ServiceRecreatePlan


@dataclass(frozen=True)
class PhasePlan:
    """Everything one phase asks of a backend."""

    name: str
    remediations: tuple[str, ...]  # kinds, in the scenario's order
    pod_dns: PodDNS
    fqdn: bool
    load: LoadPlan
    sysctls: SysctlPlan  # on top of the run's (node_sysctls); reverted after the phase
    fault: RaceFaultPlan | None
    coredns: CoreDNSPlan
    nodelocal: bool
    kube_proxy: KubeProxyPlan
    rollout: RolloutPlan | None = None
    events: tuple[EventPlan, ...] = ()

    @property
    def injected(self) -> bool:
        return self.fault is not None


@dataclass(frozen=True)
class HostPlan:
    """The host-global table the run plans with (``host``): ``conntrack_max`` as the scenario
    gives it, ``buckets`` as the run writes them with it (a real node's density unless the
    scenario says: :func:`harness.plan.sysctls.host_buckets`). None: left as it is."""

    conntrack_max: int | None = None
    buckets: int | None = None


@dataclass(frozen=True)
class CorefilePlan:
    """The user's Corefile (``cluster.coredns.corefile``): where it was read (reported, and
    named in errors) and its text, read once when the run was planned."""

    source: str  # absolute path
    text: str


@dataclass(frozen=True)
class ClusterPlan:
    """The cluster the scenario asks for, defaults resolved: nodes ``node-1`` .. ``node-N``,
    where each kind of pod runs, the cluster's names and what its upstream resolver answers."""

    nodes: int
    client_pods: int
    client_node: str
    coredns_node: str
    coredns_replicas: int  # the baseline's (RunPlan.coredns); phases may need more
    http_replicas: int
    http_node: str
    masquerade_all: bool
    namespace: str
    cluster_domain: str
    upstream_latency_ms: float = 0.0
    external_names: Mapping[str, str] = field(default_factory=dict)  # name -> IPv4
    corefile: CorefilePlan | None = None  # None: kubeadm's Corefile (or the cluster's own)

    def node_names(self) -> list[str]:
        """``node-1`` .. ``node-N``, as the scenario names its nodes."""
        return [f"node-{i + 1}" for i in range(self.nodes)]


@dataclass(frozen=True)
class RunPlan:
    """What holds for the whole run: the scenario's cluster and host table, its node sysctls,
    the baseline CoreDNS and kube-proxy, NodeLocal from the start, and the most CoreDNS
    replicas any phase asks for."""

    scenario: str  # the scenario's name
    cluster: ClusterPlan
    host: HostPlan
    sysctls: SysctlPlan
    coredns: CoreDNSPlan
    kube_proxy: KubeProxyPlan
    nodelocal: bool
    max_coredns_replicas: int
    phases: tuple[PhasePlan, ...]
    # a phase looks up one of the cluster's external names, as the scenario writes its names
    external_lookups: bool = False

    def phase(self, name: str) -> PhasePlan:
        return next(p for p in self.phases if p.name == name)

    def table_max(self) -> int | None:
        """The global table size the whole run sets: ``node_sysctls``' max wins over the
        host's (None: the host's is left as it is)."""
        return self.sysctls.conntrack_max or self.host.conntrack_max
