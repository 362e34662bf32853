"""The steady-state model: where a phase's conntrack table settles (pure).

Each flow kind of a phase's load holds ``rate x lifetime`` entries once it has run for one
lifetime (Little's law); a pool holds its ``pool_size`` entries from the start. A table's
steady-state occupancy is their sum, capped at ``nf_conntrack_max``: above the cap the table
is full and turns over at the rate its entries expire.

- :func:`load_flows` turns a load (HTTP mode and rate, DNS lookups/s and entries per lookup)
  and the timeouts in force into :class:`Flow` s; NOTRACK'ed traffic (NodeLocal DNSCache)
  holds no entry;
- :class:`SteadyState` is the model: occupancy, the level the table settles at, and the time
  the table needs to get there (the longest lifetime, or the time to reach max);
- :func:`observed_model` builds it from the rates a phase showed, for a load that cannot be
  modelled in advance; :func:`warmup_chunks` plans the aged warm-up's entries.

Lifetimes are the conntrack timeouts: TIME_WAIT for a closed TCP connection (a client close
and a server close both leave TIME_WAIT; only a reset leaves CLOSE), ``udp_timeout`` for a
UDP flow answered within 2 s, ``udp_timeout_stream`` for one still active after 2 s. Near
the limit the kernel's lazy GC keeps expired entries a few seconds longer; the model leaves
that out (it is the real table's business) and :mod:`harness.steady.assess` reads the real
table.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from cthcommon.errors import BadInput
from cthcommon.resolvconf import ResolvConf, search_candidates
from harness.plan.types import DNSLoadPlan, LoadPlan

TOLERANCE = 0.1  # within 10 % of the level: the GC trims a full table to about 95 %
# A steady state at or below this share of max is far from the limit: whether the table got
# there cannot change a drop, so such a phase needs no warm-up and counts as steady.
FAR_BELOW = 0.5
WARMUP_FILL = 0.98
# An observed flow kind holding less than this share of max is left out of an observed model
# (a handful of stray TIME_WAITs must not set the time a natural load needs)
NEGLIGIBLE = 0.01
UDP_STREAM_AFTER_S = 2.0  # a UDP entry still active after 2 s gets udp_timeout_stream


@dataclass(frozen=True)
class Timeouts:
    """The conntrack timeouts in force in the node's namespace (seconds)."""

    tcp_time_wait: float = 120.0
    tcp_close: float = 10.0
    udp: float = 30.0
    udp_stream: float = 120.0

    def __post_init__(self) -> None:
        for name in ("tcp_time_wait", "tcp_close", "udp", "udp_stream"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise BadInput(field=f"timeouts.{name}", value=v, allowed="> 0")


@dataclass(frozen=True)
class Flow:
    """One kind of flow: ``rate`` new entries/s that each live ``lifetime_s``, plus ``fixed``
    entries held for the whole phase (a connection pool). ``timeout_sysctl`` names the
    per-namespace sysctl that sets the lifetime (what a warm-up can use to age entries)."""

    kind: str
    rate: float = 0.0
    lifetime_s: float = 0.0
    fixed: int = 0
    tracked: bool = True
    timeout_sysctl: str | None = None

    @property
    def occupancy(self) -> float:
        if not self.tracked:
            return 0.0
        return self.fixed + self.rate * self.lifetime_s

    def at(self, t: float) -> float:
        """Entries held ``t`` seconds after the load started on an empty table."""
        if not self.tracked:
            return 0.0
        return self.fixed + self.rate * min(max(t, 0.0), self.lifetime_s)


def http_flows(mode: str, rate: float, pool_size: int, timeouts: Timeouts) -> list[Flow]:
    """short-lived (client closes) and server-close (server closes) both leave TIME_WAIT; a
    pool holds ``pool_size`` established entries and opens no new ones."""
    if mode == "pooled":
        return [Flow("http-pooled", fixed=pool_size)]
    if mode in ("short-lived", "server-close"):
        return [
            Flow(
                f"http-{mode}",
                rate=rate,
                lifetime_s=timeouts.tcp_time_wait,
                timeout_sysctl="nf_conntrack_tcp_timeout_time_wait",
            )
        ]
    raise BadInput(field="http.mode", value=mode, allowed=["short-lived", "server-close", "pooled"])


def sockets_per_candidate(resolver: str, conf: ResolvConf) -> int:
    """New source ports (conntrack entries) per search candidate: A and AAAA share one
    socket (glibc, musl, single-request), or each query gets its own (Go,
    single-request-reopen)."""
    if resolver == "go":
        return 2
    if resolver == "glibc" and conf.single_request_reopen:
        return 2
    return 1


def entries_per_lookup(
    names: Sequence[str], conf: ResolvConf, resolver: str, known: Callable[[str], bool]
) -> float:
    """Mean conntrack entries one lookup makes: the search candidates it tries (up to the
    first name that exists) times the sockets per candidate. With ``use-vc`` glibc writes
    both queries on one TCP connection per candidate."""
    if not names:
        return 0.0
    per = 1 if conf.use_vc else sockets_per_candidate(resolver, conf)
    total = 0
    for name in names:
        cands = search_candidates(name, conf)
        tried = len(cands)
        for i, c in enumerate(cands):
            if known(c.rstrip(".").lower()):
                tried = i + 1
                break
        total += tried * per
    return total / len(names)


def dns_flows(
    lookups_per_s: float,
    entries: float,
    timeouts: Timeouts,
    *,
    tcp: bool = False,
    notrack: bool = False,
    stream_fraction: float = 0.0,
) -> list[Flow]:
    """DNS from the pods: ``entries`` per lookup. Over UDP an answered entry lives
    ``udp_timeout``; the share ``stream_fraction`` still active after 2 s (a retry on the
    same socket) lives ``udp_timeout_stream``. Over TCP (``use-vc``) the resolver closes:
    TIME_WAIT. To NodeLocal DNSCache (NOTRACK) nothing is tracked."""
    rate = lookups_per_s * entries
    if notrack:
        return [Flow("dns-nodelocal", rate=rate, lifetime_s=0.0, tracked=False)]
    if tcp:
        return [
            Flow(
                "dns-tcp",
                rate=rate,
                lifetime_s=timeouts.tcp_time_wait,
                timeout_sysctl="nf_conntrack_tcp_timeout_time_wait",
            )
        ]
    out = [
        Flow(
            "dns-udp",
            rate=rate * (1.0 - stream_fraction),
            lifetime_s=timeouts.udp,
            timeout_sysctl="nf_conntrack_udp_timeout",
        )
    ]
    if stream_fraction > 0:
        out.append(
            Flow(
                "dns-udp-stream",
                rate=rate * stream_fraction,
                lifetime_s=timeouts.udp_stream + UDP_STREAM_AFTER_S,
                timeout_sysctl="nf_conntrack_udp_timeout_stream",
            )
        )
    return out


def mean_lookup_rate(d: DNSLoadPlan) -> float:
    """Lookups/s averaged over the pattern: a burst runs ``rate`` for ``burst_on_s`` of every
    ``burst_on_s + burst_off_s``; a ramp rises from 0 to ``rate`` (its steady state is the
    end, so the model takes ``rate``)."""
    if d.pattern == "burst":
        return d.rate * d.burst_on_s / (d.burst_on_s + d.burst_off_s)
    return d.rate


MAX_NAMES = 64  # names beyond this (cache-busting {n} expansions) look like the first ones


def phase_model(
    load: LoadPlan,
    *,
    table_max: int,
    timeouts: Timeouts,
    resolv: ResolvConf,
    names: Sequence[str],
    known: Callable[[str], bool],
    nodelocal: bool = False,
) -> SteadyState:
    """The steady state of one phase's load (its plan: the pooling remediation already
    folded into the HTTP load) in one node's table (every pod flow crosses the clients'
    node). ``names``: the lookups' names as the engine gets them; ``nodelocal``: pods ask
    169.254.20.10 (NOTRACK)."""
    flows: list[Flow] = []
    if load.locust is not None:
        unknown = (
            "the HTTP load is a locustfile, whose connection rate is its users' code and "
            "unknown before the run"
        )
        dns = dns_only(
            load, resolv=resolv, names=names, known=known, timeouts=timeouts, nodelocal=nodelocal
        )
        return SteadyState(tuple(dns), table_max, unknown=unknown, timeouts=timeouts)
    if load.http is not None:
        flows += http_flows(load.http.mode, load.http.rate, load.http.pool_size, timeouts)
    flows += dns_only(
        load, resolv=resolv, names=names, known=known, timeouts=timeouts, nodelocal=nodelocal
    )
    return SteadyState(tuple(flows), table_max, timeouts=timeouts)


def dns_only(
    load: LoadPlan,
    *,
    resolv: ResolvConf,
    names: Sequence[str],
    known: Callable[[str], bool],
    timeouts: Timeouts,
    nodelocal: bool,
) -> list[Flow]:
    if load.dns is None:
        return []
    entries = entries_per_lookup(list(names)[:MAX_NAMES], resolv, load.dns.resolver, known)
    return dns_flows(
        mean_lookup_rate(load.dns), entries, timeouts, tcp=resolv.use_vc, notrack=nodelocal
    )


@dataclass(frozen=True)
class SteadyState:
    """The model of one phase's table."""

    flows: tuple[Flow, ...]
    table_max: int
    tolerance: float = TOLERANCE
    # why the flows above are not the whole load (None: they are); such a phase gets no
    # warm-up, and its steady state is judged on :func:`observed_model`'s flows
    unknown: str | None = None
    # the timeouts in force (what an observed model gives the flows it sees)
    timeouts: Timeouts | None = None
    # how the flows were modelled when not from the load given in advance (None: from it)
    basis: str | None = None

    def __post_init__(self) -> None:
        if self.table_max < 1:
            raise BadInput(field="table_max", value=self.table_max, allowed=">= 1")
        if not 0 < self.tolerance < 1:
            raise BadInput(field="tolerance", value=self.tolerance, allowed="(0, 1)")

    @property
    def occupancy(self) -> float:
        """Entries the load would hold in a table without a limit."""
        return sum(f.occupancy for f in self.flows)

    @property
    def saturated(self) -> bool:
        return self.occupancy >= self.table_max

    @property
    def level(self) -> float:
        """Where the table settles: the occupancy, or max when the load would exceed it."""
        return min(self.occupancy, float(self.table_max))

    @property
    def ratio(self) -> float:
        """Occupancy against max (above 1: the load would hold more than the table has)."""
        return self.occupancy / self.table_max

    def at(self, t: float) -> float:
        """The count ``t`` seconds into a load that starts on an empty table."""
        return min(sum(f.at(t) for f in self.flows), float(self.table_max))

    def time_to(self, target: float) -> float:
        """Seconds from an empty table until the count reaches ``target`` (inf: never)."""
        if target <= 0:
            return 0.0
        longest = max((f.lifetime_s for f in self.flows if f.tracked), default=0.0)
        if self.at(longest) < target - 1e-9:
            return math.inf
        lo, hi = 0.0, longest
        for _ in range(60):
            mid = (lo + hi) / 2
            if self.at(mid) >= target - 1e-9:
                hi = mid
            else:
                lo = mid
        return hi

    @property
    def time_to_steady_s(self) -> float:
        """The time a natural load needs: the longest lifetime, or the time to reach max."""
        if self.saturated:
            return self.time_to(float(self.table_max))
        return max((f.lifetime_s for f in self.flows if f.tracked and f.rate > 0), default=0.0)

    @property
    def longest_lifetime_s(self) -> float:
        return max((f.lifetime_s for f in self.flows if f.tracked and f.rate > 0), default=0.0)

    @property
    def far_below_limit(self) -> bool:
        return self.unknown is None and self.occupancy <= FAR_BELOW * self.table_max

    @property
    def threshold(self) -> float:
        """The count that counts as arrived: within ``tolerance`` of the level."""
        return (1.0 - self.tolerance) * self.level

    def warmup_entries(self, flow: Flow) -> int:
        """Entries of ``flow`` a warm-up opens so that the table holds its steady-state share:
        each kind's occupancy, scaled down proportionally when the load would fill it (to
        ``WARMUP_FILL`` of max, so the warm-up's last flows are never refused).
        A pool opens itself; untracked flows hold nothing."""
        if not flow.tracked or flow.rate <= 0 or flow.lifetime_s <= 0:
            return 0
        room = WARMUP_FILL * self.table_max  # the load tops a full table off in a moment
        scale = min(1.0, room / self.occupancy) if self.occupancy else 0.0
        return int(flow.occupancy * scale)


def observed_model(
    model: SteadyState,
    *,
    inserted_per_s: float,
    refused_per_s: float,
    states: Mapping[str, int],
    where: str = "the busiest node",
) -> SteadyState:
    """The steady state of a load not known in advance (a locustfile), from the rates the
    phase showed in the kernel's counters, so that its steady state is judged too.

    ``inserted_per_s``: entries the table inserted per second while the load ran (the stat
    counter ``insert``); ``refused_per_s``: packets it refused for a new entry (``drop``),
    demand the table had no room for (an upper bound: a retransmitted SYN is refused twice);
    ``states``: the phase's state snapshot (:func:`harness.kernel.conntrack.state_histogram`).
    The flows the model knows (the load's DNS) keep their rates; the rest of the demand is
    the unknown load's new flows, which live TIME_WAIT or CLOSE in the proportion the
    snapshot's closed TCP entries show (none seen: CLOSE, the short one). ESTABLISHED
    entries are held for the phase, as a pool's are. Kinds holding less than
    ``NEGLIGIBLE`` of max are left out."""
    if model.unknown is None:
        return model
    t = model.timeouts or Timeouts()
    known = sum(f.rate for f in model.flows if f.tracked)
    other = max(0.0, inserted_per_s + refused_per_s - known)
    tw, close = states.get("TIME_WAIT", 0), states.get("CLOSE", 0)
    share_tw = tw / (tw + close) if tw + close else 0.0
    candidates = [
        Flow(
            "observed-tcp-time-wait",
            rate=other * share_tw,
            lifetime_s=t.tcp_time_wait,
            timeout_sysctl="nf_conntrack_tcp_timeout_time_wait",
        ),
        Flow(
            "observed-tcp-close",
            rate=other * (1.0 - share_tw),
            lifetime_s=t.tcp_close,
            timeout_sysctl="nf_conntrack_tcp_timeout_close",
        ),
        Flow("observed-tcp-established", fixed=states.get("ESTABLISHED", 0)),
    ]
    seen = [f for f in candidates if f.occupancy >= NEGLIGIBLE * model.table_max]
    kinds = (
        ", ".join(
            f"{f.kind.removeprefix('observed-')} "
            + (f"{f.rate:.1f}/s x {f.lifetime_s:.0f} s" if f.rate else f"{f.fixed} held")
            for f in seen
        )
        or "nothing beyond the modelled flows"
    )
    basis = (
        f"observed rates ({model.unknown}): {where} inserted {inserted_per_s:.1f} new "
        f"entries/s and refused {refused_per_s:.1f}/s during the load; beyond the load's "
        f"modelled {known:.1f}/s: {kinds}"
    )
    return dataclasses.replace(
        model, flows=(*model.flows, *seen), unknown=None, basis=basis, timeouts=t
    )


def remaining_lifetimes(n: int, lifetime_s: float) -> list[float]:
    """The remaining lifetimes of ``n`` entries in steady state: spread evenly over
    ``[0, lifetime)`` (entries created at a constant rate, each living ``lifetime``)."""
    if n <= 0:
        return []
    return [lifetime_s * (i + 0.5) / n for i in range(n)]


def warmup_chunks(n: int, lifetime_s: float, max_chunks: int = 30) -> list[tuple[int, float]]:
    """How a warm-up opens ``n`` entries: ``(entries, remaining lifetime wanted when the load
    starts)`` per chunk, longest first. One chunk per second of lifetime at most (a timeout
    sysctl has whole seconds), so each chunk's entries share the midpoint of their slice of
    ``[0, lifetime)``."""
    if n <= 0:
        return []
    k = max(1, min(n, max_chunks, math.floor(lifetime_s)))
    sizes = [n // k + (1 if i < n % k else 0) for i in range(k)]
    targets = sorted(remaining_lifetimes(k, lifetime_s), reverse=True)
    return list(zip(sizes, targets, strict=True))


def aged_timeout(remaining_s: float, until_load_s: float) -> int:
    """The timeout (whole seconds, >= 1) to give entries opened now so that ``remaining_s``
    of it is left when the load starts ``until_load_s`` from now."""
    return max(1, round(remaining_s + max(0.0, until_load_s)))
