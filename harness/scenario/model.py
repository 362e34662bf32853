"""The scenario language, as pydantic models. ``conntrack-harness schema`` publishes its schema.

A scenario is written once in Kubernetes terms (nodes, pods with dnsConfig, Services,
CoreDNS, NodeLocal DNSCache, node sysctls) and realized by a backend.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from cthcommon.errors import BadInput
from cthcommon.resolvconf import FLAG_OPTIONS, VALUE_OPTIONS
from harness.kernel.conntrack import (
    BUCKETS_MAX,
    BUCKETS_MIN,
    CONNTRACK_MAX_MAX,
    CONNTRACK_MAX_MIN,
)
from harness.plan.types import ResolverModel
from harness.scenario.corefile import MAX_COREFILE_BYTES, resolve_corefile
from harness.scenario.expect import Expectation
from harness.scenario.locustfile import check_user_classes
from harness.upstream import default_version, releases

ConntrackMax = Annotated[int, Field(ge=CONNTRACK_MAX_MIN, le=CONNTRACK_MAX_MAX)]


def _buckets(v: int | str) -> int | str:
    if isinstance(v, int) and not BUCKETS_MIN <= v <= BUCKETS_MAX:
        raise ValueError(f"must be 'auto' or a whole number {BUCKETS_MIN}..{BUCKETS_MAX}")
    return v


Buckets = Annotated[int | Literal["auto"], AfterValidator(_buckets)]

# A lookup name: DNS labels (a "{n}" template is allowed), an optional trailing dot.
_NAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_{}-]{1,63})(\.[A-Za-z0-9_{}-]{1,63})*\.?$")


def check_name(name: str) -> str:
    """A DNS name the load can look up, or ValueError saying why not."""
    if not _NAME.match(name):
        raise ValueError(
            f"{name!r} is not a DNS name (labels of letters, digits, '-' or '_', "
            "1-63 characters, joined by dots)"
        )
    return name


# Kubernetes' own rules (k8s.io/apimachinery/pkg/util/validation: IsDNS1123Label and
# IsDNS1123Subdomain): a namespace name is a label, a cluster domain a subdomain.
_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_LABEL = f"^{_LABEL}$"
DNS1123_SUBDOMAIN = rf"^{_LABEL}(\.{_LABEL})*$"
_DNS1123 = {
    False: (
        re.compile(DNS1123_LABEL),
        63,
        "an RFC 1123 label, as Kubernetes names a namespace",
        "lowercase letters, digits and '-', starting and ending with a letter or digit, "
        "at most 63 characters (e.g. 'default', 'dns-test')",
    ),
    True: (
        re.compile(DNS1123_SUBDOMAIN),
        253,
        "an RFC 1123 subdomain, as Kubernetes checks a DNS domain",
        "RFC 1123 labels (lowercase letters, digits and '-', starting and ending with a "
        "letter or digit) joined by dots, at most 253 characters (e.g. 'cluster.local')",
    ),
}


def check_dns1123(what: str, value: str, *, subdomain: bool) -> str:
    """``value`` if it is an RFC 1123 label (or subdomain), else an error saying what is."""
    pattern, most, kind, allowed = _DNS1123[subdomain]
    if len(value) <= most and pattern.match(value):
        return value
    raise PydanticCustomError("dns1123", f"{what} must be {kind}", {"expected": allowed})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DNSOption(_Strict):
    """One entry of a pod's ``dnsConfig.options`` (``name`` and optional ``value``)."""

    name: str
    value: str | None = None

    @model_validator(mode="after")
    def _known(self) -> DNSOption:
        if self.name in VALUE_OPTIONS:
            lo, hi = VALUE_OPTIONS[self.name]
            if self.value is None or not self.value.isdigit() or not lo <= int(self.value) <= hi:
                raise ValueError(f"option {self.name} needs a whole-number value in {lo}..{hi}")
        elif self.name in FLAG_OPTIONS:
            if self.value is not None:
                raise ValueError(f"option {self.name} takes no value")
        else:
            allowed = sorted([*VALUE_OPTIONS, *FLAG_OPTIONS])
            raise ValueError(f"unknown resolver option {self.name!r}; allowed: {allowed}")
        return self


class DNSConfig(_Strict):
    """A pod's DNS settings, as Kubernetes' ``dnsPolicy`` + ``dnsConfig``.

    ``nameservers`` may name ``cluster-dns`` (the kube-dns ClusterIP) or ``nodelocal``
    (169.254.20.10), or give literal addresses of harness-created pods.
    """

    policy: Literal["ClusterFirst", "None"] = "ClusterFirst"
    nameservers: list[str] = Field(default_factory=lambda: ["cluster-dns"], max_length=3)
    searches: list[str] | None = Field(
        default=None, description="Default: kubelet's <ns>.svc.<domain> svc.<domain> <domain>"
    )
    options: list[DNSOption] = Field(default_factory=lambda: [DNSOption(name="ndots", value="5")])

    @field_validator("nameservers")
    @classmethod
    def _ns(cls, v: list[str]) -> list[str]:
        for ns in v:
            if ns in ("cluster-dns", "nodelocal"):
                continue
            try:
                ipaddress.ip_address(ns)
            except ValueError:
                raise ValueError(
                    f"nameserver {ns!r} is neither an IP nor one of: cluster-dns, nodelocal"
                ) from None
        return v

    def option_map(self) -> dict[str, str | None]:
        return {o.name: o.value for o in self.options}


class CoreDNSSpec(_Strict):
    replicas: int = Field(2, ge=1, le=8)
    cache: bool = Field(True, description="CoreDNS 'cache 30' plugin")
    max_concurrent: int | None = Field(
        None,
        ge=1,
        description="Limit on concurrent forwarded queries (CoreDNS forward max_concurrent)",
    )
    node: str | None = Field(None, description="Node the CoreDNS pods run on; default: last node")
    corefile: str | None = Field(
        None,
        description="Run CoreDNS on this Corefile instead of the one kubeadm installs. The "
        "path is relative to the scenario file and must stay inside its directory (symbolic "
        f"links followed); a regular UTF-8 text file of at most {MAX_COREFILE_BYTES // 1024} "
        "KiB with a kubernetes plugin, which CoreDNS must accept (checked before the run "
        "starts). It runs as written; cache/max_concurrent set here, and the coredns "
        "remediation, edit it",
    )

    @field_validator("corefile")
    @classmethod
    def _corefile(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return None
        base = Path((info.context or {}).get("base_dir") or ".")
        return str(resolve_corefile(v, base))


class KubeProxySpec(_Strict):
    mode: Literal["iptables", "nftables"] = Field(
        "iptables", description="kube-proxy's proxy mode on every node"
    )
    version: str = Field(
        default_factory=default_version,
        description="The Kubernetes release whose kube-proxy (and control plane, CoreDNS) "
        "runs; one pinned in harness/upstream/versions.toml (default: its `default`)",
    )

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        pinned = sorted(releases())
        if v not in pinned:
            raise PydanticCustomError(
                "version",
                "Kubernetes version is not pinned in harness/upstream/versions.toml",
                {"expected": ", ".join(pinned)},
            )
        return v


class HTTPServerSpec(_Strict):
    replicas: int = Field(1, ge=1, le=8)
    node: str | None = Field(None, description="Default: last node")


class ClusterSpec(_Strict):
    nodes: int = Field(2, ge=1, le=8)
    client_pods: int = Field(4, ge=1, le=64, description="Pods that run the load")
    client_node: str | None = Field(None, description="Default: first node")
    coredns: CoreDNSSpec = Field(default_factory=CoreDNSSpec)
    http_server: HTTPServerSpec = Field(default_factory=HTTPServerSpec)
    masquerade_all: bool = Field(
        True, description="kube-proxy --masquerade-all: SNAT every packet to a ClusterIP"
    )
    kube_proxy: KubeProxySpec = Field(default_factory=KubeProxySpec)
    nodelocal_dns: bool = Field(False, description="Deploy NodeLocal DNSCache on every node")
    namespace: str = Field(
        "default",
        description="The namespace of the client and server pods: an RFC 1123 label, as "
        "Kubernetes checks a namespace name (lowercase letters, digits and '-', starting and "
        "ending with a letter or digit, at most 63 characters)",
        json_schema_extra={"pattern": DNS1123_LABEL, "maxLength": 63},
    )
    cluster_domain: str = Field(
        "cluster.local",
        description="The cluster's DNS domain (kubelet --cluster-domain): an RFC 1123 "
        "subdomain (RFC 1123 labels joined by dots, at most 253 characters)",
        json_schema_extra={"pattern": DNS1123_SUBDOMAIN, "maxLength": 253},
    )

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        return check_dns1123("namespace", v, subdomain=False)

    @field_validator("cluster_domain")
    @classmethod
    def _cluster_domain(cls, v: str) -> str:
        return check_dns1123("cluster_domain", v, subdomain=True)

    dns_config: DNSConfig = Field(default_factory=DNSConfig)
    upstream_latency_ms: float = Field(
        0,
        ge=0,
        le=5000,
        description="Delay of the upstream resolver's answers (0: dnsmasq, as fast as it gets)",
    )
    external_names: dict[str, str] = Field(
        default_factory=lambda: {"api.example.com": "203.0.113.80"},
        description="Names the upstream resolver answers (name -> IPv4)",
    )

    @field_validator("external_names")
    @classmethod
    def _external(cls, v: dict[str, str]) -> dict[str, str]:
        for name, ip in v.items():
            try:
                check_name(name)
            except ValueError as e:
                raise ValueError(f"@{name}: {e}") from None
            try:
                ipaddress.IPv4Address(ip)
            except ValueError:
                raise ValueError(f"@{name}: {ip!r} is not an IPv4 address") from None
        return v

    @model_validator(mode="after")
    def _nodes(self) -> ClusterSpec:
        names = {f"node-{i + 1}" for i in range(self.nodes)}
        for label, node in (
            ("client_node", self.client_node),
            ("coredns.node", self.coredns.node),
            ("http_server.node", self.http_server.node),
        ):
            if node is not None and node not in names:
                raise ValueError(f"@{label}: {node!r} is not a node; nodes are {sorted(names)}")
        return self


class HostSpec(_Strict):
    nf_conntrack_max: ConntrackMax | None = Field(
        None, description="Host-global table size for the run (restored afterwards)"
    )
    nf_conntrack_buckets: Buckets | None = Field(
        None,
        description="Host-global hash buckets for the run (restored afterwards). Default, when "
        "nf_conntrack_max is set: one bucket per entry (nf_conntrack_max), as a real node "
        "holds them (this kernel's own default is max = buckets; kube-proxy keeps at least "
        "max/4); 'auto' = nf_conntrack_max / 4, the densest a kube-proxy node gets",
    )


class NodeSysctls(_Strict):
    """Per-namespace conntrack sysctls of every node (and the global max/buckets)."""

    nf_conntrack_max: ConntrackMax | None = None
    nf_conntrack_buckets: Buckets | None = Field(
        None,
        description="Host-global hash buckets for the run. Default, when this block sets "
        "nf_conntrack_max: one bucket per entry, as for host.nf_conntrack_buckets; "
        "'auto' = nf_conntrack_max / 4, as the seed recommends",
    )
    tcp_timeout_time_wait: int | None = Field(None, ge=1, le=600)
    tcp_timeout_close: int | None = Field(None, ge=1, le=600)
    udp_timeout: int | None = Field(None, ge=1, le=600)
    udp_timeout_stream: int | None = Field(None, ge=1, le=600)


class HTTPLoad(_Strict):
    mode: Literal["short-lived", "server-close", "pooled"] = "short-lived"
    rate: float = Field(800, gt=0, le=50_000, description="Requests per second")
    pool_size: int = Field(8, ge=1, le=1024, description="Keep-alive connections (pooled)")
    connect_timeout_s: float = Field(2.0, gt=0, le=30)
    max_in_flight: int = Field(2000, ge=1, le=50_000)
    workers: int = Field(
        1, ge=1, le=16, description="Load worker processes (one Python process ~ one core)"
    )
    locustfile: str | None = Field(
        None,
        description="Drive HTTP with this Locust file instead of the raw client (path relative "
        "to the scenario file); its users target the http-server Service (--host)",
    )
    users: int | None = Field(
        None, ge=1, le=1000, description="locustfile: concurrent Locust users (default 10)"
    )
    spawn_rate: float | None = Field(
        None, gt=0, le=1000, description="locustfile: users started per second (default: all)"
    )
    user_classes: list[str] | None = Field(
        None,
        min_length=1,
        description="locustfile: the User classes to run, by name (default: every one in it)",
    )

    @field_validator("locustfile")
    @classmethod
    def _locustfile(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return None
        base = Path((info.context or {}).get("base_dir") or ".")
        path = (base / v).resolve()
        if path.suffix != ".py":
            raise ValueError(f"a locustfile is a Python file (*.py); got {v!r}")
        if not path.is_file():
            raise ValueError(f"locustfile not found: {v!r} (looked for {path})")
        return str(path)

    @model_validator(mode="after")
    def _locust_fields(self) -> HTTPLoad:
        if self.locustfile is None:
            for name in ("users", "spawn_rate", "user_classes"):
                if getattr(self, name) is not None:
                    raise ValueError(f"@{name}: applies only with a locustfile")
        else:
            try:
                check_user_classes(Path(self.locustfile), self.user_classes)
            except ValueError as e:
                text = str(e)
                raise ValueError(text if text.startswith("@") else f"@locustfile: {text}") from None
        return self


class DNSLoad(_Strict):
    rate: float = Field(100, gt=0, le=100_000, description="Lookups per second")
    resolver: ResolverModel = Field(
        "glibc",
        description="The stub resolver modelled: glibc, musl, go, sequential, or c-ares (one "
        "UDP socket per client process shared by A, AAAA and every lookup in flight; set "
        "lookups_per_process to what one long-lived process makes)",
    )
    family: Literal["any", "ipv4"] = Field(
        "any",
        description="any: A and AAAA (getaddrinfo AF_UNSPEC); ipv4: A only (AF_INET, Go "
        "'ip4'), which cannot meet the A/AAAA insert race",
    )
    names: list[str] = Field(default_factory=lambda: ["http-server"], min_length=1)
    pattern: Literal["constant", "burst", "ramp"] = Field(
        "constant", description="constant rate; burst (on/off); ramp from 0 to rate"
    )
    burst_on_s: float = Field(1.0, gt=0, le=600)
    burst_off_s: float = Field(1.0, ge=0, le=600)
    workers: int = Field(1, ge=1, le=16, description="Load worker processes (spread over CPUs)")
    lookups_per_process: int = Field(
        1,
        ge=1,
        description="Lookups a client process makes before it exits (glibc's fallback to "
        "sequential queries is sticky per process)",
    )

    @field_validator("names")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        for i, name in enumerate(v):
            try:
                check_name(name)
            except ValueError as e:
                raise ValueError(f"@[{i}]: {e}") from None
        return v


class SamePortUDP(_Strict):
    """A client that keeps its source port: one connected UDP socket per client pod for the
    whole phase, sending DNS queries (A, one name) to the kube-dns ClusterIP at a fixed rate
    and never reopening it, as nginx's resolver and statsd senders do. Per second it counts
    what it sent, what was answered, refused (ECONNREFUSED: kube-proxy's reject rule for a
    Service without endpoints answered with ICMP port unreachable) and silent (no answer
    within ``timeout_s``)."""

    rate: float = Field(20, gt=0, le=1000, description="Queries per second from each pod")
    name: str = Field(
        "kube-dns.kube-system.svc.cluster.local",
        description="The name every query asks for (A); an absolute name, no search list",
    )
    timeout_s: float = Field(1.0, gt=0, le=30, description="A query silent this long is lost")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)


class StatsdLoad(_Strict):
    """A one-way sender, as a statsd client: one unconnected UDP socket per client pod that
    keeps its source port for the whole phase and sends a statsd counter line (``cth:1|c``)
    to the kube-dns ClusterIP's port 53 at a fixed rate, never reading anything back. Its
    delivery is counted at the receivers: an nft counter in each CoreDNS pod's namespace
    counts the datagrams to port 53 shorter than a DNS header (CoreDNS drops them unanswered;
    the DNS counters leave them out). result.json: ``statsd``."""

    rate: float = Field(20, gt=0, le=1000, description="Datagrams per second from each pod")


class LoadSpec(_Strict):
    duration_s: float = Field(20, gt=0, le=3600)
    warmup: Literal["aged", "none"] = Field(
        "aged",
        description="aged: before the load, open the steady state's entries with their "
        "remaining lifetimes spread as in steady state (labelled in result.json); none: "
        "start on an empty table (the phase must be long enough to reach steady state)",
    )
    http: HTTPLoad | None = Field(default_factory=HTTPLoad)
    dns: DNSLoad | None = Field(default_factory=DNSLoad)
    udp: SamePortUDP | None = Field(
        None,
        description="netns: a same-port UDP client in every client pod (result.json: udp), "
        "alongside the DNS and HTTP load",
    )
    statsd: StatsdLoad | None = Field(
        None,
        description="netns: a one-way statsd-like UDP sender in every client pod, to the "
        "kube-dns ClusterIP, counted at the CoreDNS pods (result.json: statsd)",
    )

    @model_validator(mode="after")
    def _some_load(self) -> LoadSpec:
        if self.http is None and self.dns is None:
            raise ValueError("@dns: http and dns are both null: a phase needs some load")
        return self


class _Remediation(_Strict):
    kind: str


class Pooling(_Remediation):
    """Reuse HTTP connections (keep-alive), as requests.Session does."""

    kind: Literal["pooling"] = "pooling"
    pool_size: int = Field(8, ge=1, le=1024)


class ConntrackSysctls(_Remediation):
    """Raise nf_conntrack_max (+buckets) and/or shorten conntrack timeouts on the nodes."""

    kind: Literal["conntrack-sysctls"] = "conntrack-sysctls"
    nf_conntrack_max: ConntrackMax | None = None
    nf_conntrack_buckets: Buckets | None = None
    tcp_timeout_time_wait: int | None = Field(None, ge=1, le=600)


class ResolverOption(_Remediation):
    """Add resolver options to every client pod's dnsConfig (e.g. single-request-reopen)."""

    kind: Literal["resolver-option"] = "resolver-option"
    options: list[DNSOption]


class NodeLocalDNS(_Remediation):
    """NodeLocal DNSCache on every node; client pods point at 169.254.20.10."""

    kind: Literal["nodelocal-dns"] = "nodelocal-dns"


class FQDN(_Remediation):
    """Look names up as absolute FQDNs with a trailing dot (no search list)."""

    kind: Literal["fqdn"] = "fqdn"


class CoreDNSChange(_Remediation):
    """Change CoreDNS: cache, replica count, concurrency limit."""

    kind: Literal["coredns"] = "coredns"
    cache: bool | None = None
    replicas: int | None = Field(None, ge=1, le=8)
    max_concurrent: int | None = Field(None, ge=1)


Remediation = Annotated[
    Pooling | ConntrackSysctls | ResolverOption | NodeLocalDNS | FQDN | CoreDNSChange,
    Field(discriminator="kind"),
]
REMEDIATION_KINDS = (
    "pooling",
    "conntrack-sysctls",
    "resolver-option",
    "nodelocal-dns",
    "fqdn",
    "coredns",
)


class RaceWindowFault(_Strict):
    """INJECTED: drop the 2nd original-direction UDP/53 packet of an unreplied conntrack entry."""

    kind: Literal["race-window"] = "race-window"
    probability: float = Field(0.5, gt=0, le=1)
    pin_cpus: bool = Field(
        True,
        description="Pin DNS servers to CPU 0 and the load to CPU 1 so the A answer cannot "
        "overtake the AAAA before the rule sees it (see KERNEL.md)",
    )
    injected: Literal[True] = True


class CoreDNSRollout(_Strict):
    """A rolling restart of CoreDNS while the load runs (``kubectl rollout restart``): each
    running pod is replaced by a new one with a new IP, one at a time: the new pod starts and
    becomes Ready, then the old one is deleted (its endpoint goes, it gets SIGTERM and serves
    through its Corefile's lameduck). Real kube-proxy follows the EndpointSlices and clears
    the stale UDP conntrack entries (kubernetes/kubernetes#125467). Not a fault: a routine
    operation, measured."""

    at_s: float = Field(
        gt=0,
        le=600,
        description="Seconds after the load generator starts (its first lookups follow "
        "within about a second) when the rollout begins",
    )


SCALABLE_DEPLOYMENTS = ("coredns",)


class Scale(_Strict):
    """Scale a Deployment of the scenario, as ``kubectl scale --replicas=N`` does: pods
    deleted (their endpoints go, their network is torn down as CNI DEL does) or new pods
    (new IPs) started and Ready. 0 leaves the Service without endpoints."""

    deployment: Literal["coredns"] = Field(
        description="The Deployment to scale: coredns (kube-system/kube-dns's pods, UDP 53)"
    )
    replicas: int = Field(ge=0, le=8)


class KubeProxyRestart(_Strict):
    """Restart kube-proxy on one node as kubelet restarts its pod: SIGTERM to the running
    process (by PID), then the same binary with the same flags and config again. The timeline
    has the stop, the start, kube-proxy's first rules sync after it and the Service's entries
    in the node's table before and after (kubernetes#122740)."""

    node: str = Field(description="The node: node-1 .. node-N (cluster.nodes)")


SERVICES_RECREATABLE = ("kube-system/kube-dns",)


class ServiceRecreate(_Strict):
    """Delete a Service through the API and create it again with the same spec (the same
    ``spec.clusterIP``, so the same ClusterIP), ``down_s`` after the delete. The timeline has
    the delete, its EndpointSlices gone, every node's rules without it, the create, and its
    endpoints and rules back (kubernetes#141371: a deleted UDP Service's entries stay)."""

    service: Literal["kube-system/kube-dns"] = Field(
        description="namespace/name of the scenario's Service: kube-system/kube-dns (UDP 53, "
        "the one whose entries the phase reads)"
    )
    down_s: float = Field(
        2.0, ge=0, le=60, description="Seconds from the delete to the create (at least until "
        "every node's rules dropped it)"
    )  # fmt: skip


EVENT_KINDS = ("scale", "restart_kube_proxy", "recreate_service")


class PhaseEvent(_Strict):
    """Something done to the cluster while the phase's load runs, on the load's clock:
    exactly one of ``scale``, ``restart_kube_proxy``, ``recreate_service``."""

    at_s: float = Field(
        gt=0,
        le=3600,
        description="Seconds after the load generator starts; before the load ends, and in order",
    )
    scale: Scale | None = None
    restart_kube_proxy: KubeProxyRestart | None = None
    recreate_service: ServiceRecreate | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> PhaseEvent:
        given = [k for k in EVENT_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                f"an event is exactly one of {', '.join(EVENT_KINDS)}; got "
                f"{', '.join(given) if given else 'none'}"
            )
        return self

    @property
    def kind(self) -> str:
        return next(k for k in EVENT_KINDS if getattr(self, k) is not None)


class Phase(_Strict):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,40}$")
    description: str = ""
    remediations: list[Remediation] = Field(default_factory=list)
    faults: list[RaceWindowFault] = Field(default_factory=list)
    rollout: CoreDNSRollout | None = Field(
        None, description="Roll CoreDNS (new pods, new IPs) during the load (netns backend)"
    )
    events: list[PhaseEvent] = Field(
        default_factory=list,
        description="Endpoint events during the load, in time order (netns backend): e.g. "
        "[{at_s: 5, scale: {deployment: coredns, replicas: 0}}, {at_s: 20, scale: "
        "{deployment: coredns, replicas: 2}}], {at_s: 5, restart_kube_proxy: {node: node-1}}, "
        "{at_s: 9, recreate_service: {service: kube-system/kube-dns}}; result.json's "
        "phases[].endpoints has each step",
    )
    load: LoadSpec | None = Field(None, description="Replaces the scenario's load for this phase")
    expect: list[str] = Field(default_factory=list)
    repeat: int = Field(1, ge=1, le=100)

    @field_validator("remediations", mode="before")
    @classmethod
    def _shorthand(cls, v: Any) -> Any:
        # "pooling" is shorthand for {kind: pooling}
        if not isinstance(v, list):
            return v
        for i, x in enumerate(v):
            # {conntrack-sysctls: {...}}: the kind written as a key above its fields
            if isinstance(x, dict) and "kind" not in x and len(x) == 1:
                (key,) = x
                if key in REMEDIATION_KINDS:
                    raise ValueError(
                        f"@[{i}]: write `kind: {key}` next to its fields, not `{key}:` "
                        "as a key above them"
                    )
        return [{"kind": x} if isinstance(x, str) else x for x in v]

    @field_validator("expect")
    @classmethod
    def _expect(cls, v: list[str]) -> list[str]:
        for i, text in enumerate(v):
            try:
                Expectation.parse(text, field=f"expect[{i}]")
            except BadInput as e:
                # "@[i]: ..." lets the loader name phases[n].expect[i]
                raise ValueError(f"@[{i}]: {str(e).split(': ', 1)[-1]}") from None
        return v

    @property
    def injected(self) -> bool:
        return bool(self.faults)

    def expectations(self) -> list[Expectation]:
        return [Expectation.parse(t) for t in self.expect]


class Scenario(_Strict):
    apiVersion: Literal["conntrack-harness/v1"] = "conntrack-harness/v1"
    kind: Literal["Scenario"] = "Scenario"
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    description: str = ""
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)
    host: HostSpec = Field(default_factory=HostSpec)
    node_sysctls: NodeSysctls = Field(default_factory=NodeSysctls)
    load: LoadSpec = Field(default_factory=LoadSpec)
    phases: list[Phase] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_phases(self) -> Scenario:
        seen: dict[str, int] = {}
        for i, p in enumerate(self.phases):
            if p.name in seen:
                raise ValueError(
                    f"@phases[{i}].name: phase name {p.name!r} is used twice "
                    f"(first as phases[{seen[p.name]}])"
                )
            seen[p.name] = i
        return self

    @model_validator(mode="after")
    def _pooling_needs_the_raw_client(self) -> Scenario:
        for i, p in enumerate(self.phases):
            http = self.phase_load(p).http
            if (
                http is not None
                and http.locustfile
                and any(r.kind == "pooling" for r in p.remediations)
            ):
                raise ValueError(
                    f"@phases[{i}].remediations: pooling switches the raw client to keep-alive; "
                    "a locustfile decides its own connections (use a keep-alive user class)"
                )
        return self

    @model_validator(mode="after")
    def _rollout_inside_the_load(self) -> Scenario:
        for i, p in enumerate(self.phases):
            if p.rollout is not None and p.rollout.at_s >= self.phase_load(p).duration_s:
                raise ValueError(
                    f"@phases[{i}].rollout.at_s: must be before the load ends "
                    f"(duration_s {self.phase_load(p).duration_s:g})"
                )
        return self

    @model_validator(mode="after")
    def _events_inside_the_load(self) -> Scenario:
        for i, p in enumerate(self.phases):
            duration = self.phase_load(p).duration_s
            if p.events and p.rollout is not None:
                raise ValueError(
                    f"@phases[{i}].events: a phase has either a rollout or events, not both"
                )
            prev = 0.0
            for j, e in enumerate(p.events):
                if e.at_s >= duration:
                    raise ValueError(
                        f"@phases[{i}].events[{j}].at_s: must be before the load ends "
                        f"(duration_s {duration:g}); got {e.at_s:g}"
                    )
                if e.at_s <= prev:
                    raise ValueError(
                        f"@phases[{i}].events[{j}].at_s: events must be in time order, each "
                        f"after the one before ({prev:g} s); got {e.at_s:g}"
                    )
                prev = e.at_s
                sr = e.recreate_service
                if sr is not None and e.at_s + sr.down_s >= duration:
                    raise ValueError(
                        f"@phases[{i}].events[{j}].recreate_service.down_s: the create "
                        f"({e.at_s:g} + {sr.down_s:g} s) must be before the load ends "
                        f"(duration_s {duration:g})"
                    )
                r = e.restart_kube_proxy
                names = [f"node-{n + 1}" for n in range(self.cluster.nodes)]
                if r is not None and r.node not in names:
                    raise ValueError(
                        f"@phases[{i}].events[{j}].restart_kube_proxy.node: {r.node!r} is not a "
                        f"node; nodes are {names} (cluster.nodes {self.cluster.nodes})"
                    )
        return self

    def phase_load(self, phase: Phase) -> LoadSpec:
        return phase.load or self.load
