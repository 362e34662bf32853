"""Public, JSON-serialisable types of the DNS load generator (``dataclasses.asdict`` works)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from cthcommon.errors import BadInput
from cthcommon.resolvconf import ResolvConf

ResolverName = Literal["glibc", "musl", "go", "sequential", "c-ares"]
Pattern = Literal["constant", "burst", "ramp"]
# "unfinished": still waiting when the run ended, after at least one full timeout (see Drain)
Outcome = Literal["answer", "nxdomain", "nodata", "timeout", "error", "unfinished"]
# What happens to lookups still in flight once every lookup has started:
# - "full": wait for each to end (a glibc lookup that gets no reply at all takes
#   timeout * attempts per search candidate, 20 s with the defaults);
# - "first-timeout": wait only until each has waited one full resolver timeout (it is a
#   timeout then, whatever happens next), and record it as outcome "unfinished". No lookup
#   is dropped from the count and none is classified before it has waited a full timeout.
Drain = Literal["full", "first-timeout"]
Family = Literal["any", "ipv4"]
FAMILIES: tuple[str, ...] = ("any", "ipv4")
DRAINS: tuple[str, ...] = ("full", "first-timeout")
RESOLVERS: tuple[str, ...] = ("glibc", "musl", "go", "sequential", "c-ares")
PATTERNS: tuple[str, ...] = ("constant", "burst", "ramp")


@dataclass(frozen=True)
class ClientPod:
    """A client pod: its network namespace (None: this process's own, as in a real pod), its
    IP and the resolv.conf its resolver reads."""

    netns: str | None
    ip: str
    resolv: ResolvConf

    @property
    def label(self) -> str:
        """How records name the pod: its namespace, or its IP inside a real pod."""
        return self.netns or self.ip


@dataclass(frozen=True)
class DNSPlan:
    """What load to offer: ``rate`` lookups/s for ``duration_s`` seconds.

    ``lookups_per_process`` is how many lookups one client "process" makes before it is
    replaced by a fresh one; resolver state that glibc keeps per process (the sticky
    fallback to sequential queries) lives that long.
    """

    rate: float
    duration_s: float
    names: list[str]
    resolver: ResolverName
    lookups_per_process: int = 1
    pattern: Pattern = "constant"
    burst_on_s: float = 1.0
    burst_off_s: float = 1.0
    max_in_flight: int = 4096
    workers: int = 1
    drain: Drain = "full"
    family: Family = "any"  # "ipv4": A only (AF_INET / Go "ip4"), no A/AAAA pair

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise BadInput("must be > 0", field="dns.rate", value=self.rate)
        if not self.duration_s > 0:
            raise BadInput("must be > 0", field="dns.duration_s", value=self.duration_s)
        if not self.names:
            raise BadInput("at least one name is needed", field="dns.names", value=self.names)
        if self.resolver not in RESOLVERS:
            raise BadInput(
                "unknown resolver model",
                field="dns.resolver",
                value=self.resolver,
                allowed=list(RESOLVERS),
            )
        if self.pattern not in PATTERNS:
            raise BadInput(
                "unknown load pattern",
                field="dns.pattern",
                value=self.pattern,
                allowed=list(PATTERNS),
            )
        if self.lookups_per_process < 1:
            raise BadInput(
                "must be >= 1", field="dns.lookups_per_process", value=self.lookups_per_process
            )
        if self.burst_on_s <= 0 or self.burst_off_s < 0:
            raise BadInput(
                "burst_on_s must be > 0 and burst_off_s >= 0",
                field="dns.burst",
                value=(self.burst_on_s, self.burst_off_s),
            )
        if self.max_in_flight < 1:
            raise BadInput("must be >= 1", field="dns.max_in_flight", value=self.max_in_flight)
        if self.workers < 1:
            raise BadInput("must be >= 1", field="dns.workers", value=self.workers)
        if self.family not in FAMILIES:
            raise BadInput(
                "unknown address family",
                field="dns.family",
                value=self.family,
                allowed=list(FAMILIES),
            )
        if self.drain not in DRAINS:
            raise BadInput(
                "unknown drain", field="dns.drain", value=self.drain, allowed=list(DRAINS)
            )


@dataclass(slots=True)
class AttemptRecord:
    """One query on the wire: when it left (relative to the lookup start) and what came back."""

    qname: str
    qtype: str
    server: str
    proto: Literal["udp", "tcp"]
    port: int
    t_sent: float
    latency_s: float | None = None  # None: never answered
    rcode: str | None = None


@dataclass(slots=True)
class LookupRecord:
    """One getaddrinfo-style lookup (A and AAAA for one name, through the search list)."""

    t_start: float
    pod: str
    name: str
    outcome: Outcome
    latency_s: float
    queries_sent: int
    replies_received: int
    source_ports: list[int]
    retries: int
    full_timeout_waits: int
    attempts: list[AttemptRecord] = field(default_factory=list)
    resolver: str = ""
    error: str | None = None
