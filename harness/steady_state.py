"""Where a phase's conntrack table settles, and when a phase was measured there (pure).

Each flow kind of a phase's load holds ``rate x lifetime`` entries once it has run for one
lifetime (Little's law); a pool holds its ``pool_size`` entries from the start. A table's
steady-state occupancy is their sum, capped at ``nf_conntrack_max``: above the cap the table
is full and turns over at the rate its entries expire.

- :func:`load_flows` turns a load (HTTP mode and rate, DNS lookups/s and entries per lookup)
  and the timeouts in force into :class:`Flow` s; NOTRACK'ed traffic (NodeLocal DNSCache)
  holds no entry;
- :class:`SteadyState` is the model: occupancy, the level the table settles at, and the time
  the table needs to get there (the longest lifetime, or the time to reach max);
- :func:`assess` compares the model with the sampled table: when the count came within
  ``tolerance`` of that level, and the lookups made from then on (the steady-state window).

Lifetimes are the conntrack timeouts: TIME_WAIT for a closed TCP connection (a client close
and a server close both leave TIME_WAIT; only a reset leaves CLOSE), ``udp_timeout`` for a
UDP flow answered within 2 s, ``udp_timeout_stream`` for one still active after 2 s. Near
the limit the kernel's lazy GC keeps expired entries a few seconds longer; the model leaves
that out (it is the real table's business) and :func:`assess` reads the real table.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from cthcommon.resolvconf import ResolvConf, search_candidates
from cthcommon.stats import Comparison
from harness.errors import BadInput
from harness.scenario.model import DNSLoad, LoadSpec

# two-sided 95 % Student t quantiles by degrees of freedom (1..30); 1.96 beyond
T95 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)
BATCH_S = 5  # seconds per batch: the GC's passes make the table (and lookups) a sawtooth
TOLERANCE = 0.1  # within 10 % of the level: the GC trims a full table to about 95 %
# A steady state at or below this share of max is far from the limit: whether the table got
# there cannot change a drop, so such a phase needs no warm-up and counts as steady.
FAR_BELOW = 0.5
WARMUP_FILL = 0.98
NOT_MODELLED = "not modelled: "  # how a reason starts when the model does not know the load
# A natural phase that reaches its steady state late is judged on the window after it only
# when that window is a fair sample of the steady state: at least a third of the phase, at
# least four batch-means batches, and (for a phase with DNS lookups) at least 100 lookups.
MIN_WINDOW_SHARE = 1 / 3
MIN_WINDOW_S = 4 * BATCH_S
MIN_WINDOW_LOOKUPS = 100
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


def mean_lookup_rate(d: DNSLoad) -> float:
    """Lookups/s averaged over the pattern: a burst runs ``rate`` for ``burst_on_s`` of every
    ``burst_on_s + burst_off_s``; a ramp rises from 0 to ``rate`` (its steady state is the
    end, so the model takes ``rate``)."""
    if d.pattern == "burst":
        return d.rate * d.burst_on_s / (d.burst_on_s + d.burst_off_s)
    return d.rate


MAX_NAMES = 64  # names beyond this (cache-busting {n} expansions) look like the first ones


def phase_model(
    load: LoadSpec,
    *,
    table_max: int,
    timeouts: Timeouts,
    resolv: ResolvConf,
    names: Sequence[str],
    known: Callable[[str], bool],
    pooling: int | None = None,
    nodelocal: bool = False,
) -> SteadyState:
    """The steady state of one phase's load in one node's table (every pod flow crosses the
    clients' node). ``names``: the lookups' names as the engine gets them; ``pooling``: the
    pooling remediation's pool size; ``nodelocal``: pods ask 169.254.20.10 (NOTRACK)."""
    flows: list[Flow] = []
    if load.http is not None and load.http.locustfile is not None:
        unknown = (
            "the HTTP load is a locustfile, whose connection rate is its users' code and "
            "unknown before the run"
        )
        dns = dns_only(
            load, resolv=resolv, names=names, known=known, timeouts=timeouts, nodelocal=nodelocal
        )
        return SteadyState(tuple(dns), table_max, unknown=unknown, timeouts=timeouts)
    if load.http is not None:
        mode = "pooled" if pooling else load.http.mode
        flows += http_flows(mode, load.http.rate, pooling or load.http.pool_size, timeouts)
    flows += dns_only(
        load, resolv=resolv, names=names, known=known, timeouts=timeouts, nodelocal=nodelocal
    )
    return SteadyState(tuple(flows), table_max, timeouts=timeouts)


def dns_only(
    load: LoadSpec,
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


def batch_means_ci(
    rows: Sequence[Sequence[float]], batch_s: int = BATCH_S
) -> tuple[float, float, float, int]:
    """Timeout rate with a 95 % batch-means interval from ``[second, lookups, timeouts]``
    rows: ``(rate, low, high, batches)``. Lookups made while the table is full time out
    together, so they are not independent (a Wilson interval is too narrow); batches of
    ``batch_s`` seconds are. Fewer than two batches: the interval is [0, 1]."""
    batches: dict[int, list[float]] = {}
    for r in rows:
        b = batches.setdefault(int(r[0]) // batch_s, [0.0, 0.0])
        b[0] += r[1]
        b[1] += r[2]
    rates = [t / n for n, t in batches.values() if n > 0]
    lookups = sum(n for n, _ in batches.values())
    rate = sum(t for _, t in batches.values()) / lookups if lookups else 0.0
    k = len(rates)
    if k < 2:
        return rate, 0.0, 1.0, k
    mean = sum(rates) / k
    sd = math.sqrt(sum((x - mean) ** 2 for x in rates) / (k - 1))
    t = T95[k - 2] if k - 1 <= len(T95) else 1.96
    half = t * sd / math.sqrt(k)
    return rate, max(0.0, mean - half), min(1.0, mean + half), k


@dataclass(frozen=True)
class Assessment:
    """The model against the sampled table.

    ``steady_from_s``: seconds after the load started when the table first came within
    tolerance of the level (None: never); ``reached``: the phase's lookups describe the
    steady state, either all of them (it arrived within ``late_s``: ``judged_on`` "phase")
    or those of the window after it arrived, when that window is long enough
    (:func:`window_enough`: ``judged_on`` "window"). ``needed_s``: for a phase not
    reached, the shortest phase from a natural start that would be judged (None: reached,
    or no duration would do)."""

    level: float
    threshold: float
    steady_from_s: float | None
    reached: bool
    observed_mean: float  # the count's mean over the steady-state window (0: none)
    observed_peak: int
    lookups: int  # made in the steady-state window
    timeouts: int
    batch_ci: tuple[float, float]  # 95 % batch-means interval of the window's timeout rate
    batches: int
    reason: str
    notes: list[str] = field(default_factory=list)
    judged_on: Literal["phase", "window"] = "phase"
    needed_s: float | None = None


def first_at_or_above(
    timeline: Sequence[tuple[float, int]], threshold: float, start_s: float
) -> float | None:
    for t, c in timeline:
        if t >= start_s and c >= threshold:
            return t
    return None


def window_wanted_s(duration_s: float) -> float:
    """The shortest steady window a phase of ``duration_s`` is judged on."""
    return max(MIN_WINDOW_SHARE * duration_s, float(MIN_WINDOW_S))


def window_enough(duration_s: float, window_s: float, lookups: int, any_lookups: bool) -> bool:
    """Is the window after the table reached its steady state a fair sample of it: at least
    a third of the phase and ``MIN_WINDOW_S``, and ``MIN_WINDOW_LOOKUPS`` lookups when the
    phase made any."""
    return window_s >= window_wanted_s(duration_s) - 1e-9 and (
        not any_lookups or lookups >= MIN_WINDOW_LOOKUPS
    )


def needed_duration_s(steady_at_s: float, lookups_per_s: float) -> float:
    """The shortest phase whose window after ``steady_at_s`` is judged (:func:`window_enough`):
    D - T >= D / 3, D - T >= ``MIN_WINDOW_S`` and, with lookups, enough of them."""
    d = max(steady_at_s / (1.0 - MIN_WINDOW_SHARE), steady_at_s + MIN_WINDOW_S)
    if lookups_per_s > 0:
        d = max(d, steady_at_s + MIN_WINDOW_LOOKUPS / lookups_per_s)
    return float(math.ceil(d))


def assess(
    model: SteadyState,
    timeline: Sequence[tuple[float, int]],
    *,
    load_start_s: float,
    duration_s: float,
    dns_timeline: Sequence[Sequence[float]] = (),
    late_s: float | None = None,
    settle_s: float = 0.0,
) -> Assessment:
    """Did the phase measure in steady state?

    ``timeline``: the busiest node's ``(t, count)`` samples on the sampler's clock;
    ``load_start_s``: when the load began on that clock; ``dns_timeline``: the DNS result's
    ``[second since load start, lookups, timeouts]`` rows. ``late_s`` (default: 10 % of the
    phase, at least 1 s) is how long after the load started the table may arrive and the
    whole phase still count as measured in steady state; a later arrival is judged on the
    window after it when :func:`window_enough`. ``settle_s``: the earliest the steady
    state can hold: a load that started on an empty table turns over only once its first
    entries expire (the longest lifetime); after an aged warm-up, at once (0)."""
    allow = max(1.0, 0.1 * duration_s) if late_s is None else late_s
    hit = first_at_or_above(timeline, model.threshold, max(load_start_s, load_start_s + settle_s))
    if model.far_below_limit:  # the whole phase is the window
        hit = load_start_s
    steady_from = None if hit is None else round(max(0.0, hit - load_start_s), 3)
    window = [c for t, c in timeline if hit is not None and t >= hit]
    mean = sum(window) / len(window) if window else 0.0
    peak = max((c for _, c in timeline), default=0)
    rows = [r for r in dns_timeline if steady_from is not None and r[0] >= math.ceil(steady_from)]
    lookups = int(sum(r[1] for r in rows))
    timeouts = int(sum(r[2] for r in rows))
    all_lookups = int(sum(r[1] for r in dns_timeline))
    _, b_low, b_high, batches = batch_means_ci(rows)
    level = f"{model.level:,.0f} of max {model.table_max:,}"
    if model.unknown is not None:
        full = first_at_or_above(timeline, (1.0 - model.tolerance) * model.table_max, load_start_s)
        seen = (
            f"the table was full from {full - load_start_s:.1f} s"
            if full is not None
            else f"it peaked at {peak:,} of max {model.table_max:,}"
        )
        return Assessment(
            level=model.level,
            threshold=model.threshold,
            steady_from_s=None,
            reached=False,
            observed_mean=round(sum(c for _, c in timeline) / len(timeline), 1)
            if timeline
            else 0.0,
            observed_peak=peak,
            lookups=0,
            timeouts=0,
            batch_ci=(0.0, 1.0),
            batches=0,
            reason=(
                f"{NOT_MODELLED}{model.unknown}, and the kernel's counters gave no rates to "
                f"model it from; so no warm-up, the phase started on an empty table ({seen})"
            ),
        )
    judged_on: Literal["phase", "window"] = "phase"
    # from a natural start the table is steady no earlier than settle_s, nor before it fills
    steady_at = max(settle_s, model.time_to(model.threshold), steady_from or 0.0)
    needed: float | None = needed_duration_s(steady_at, all_lookups / duration_s)
    if not math.isfinite(steady_at):
        needed = None
    if model.far_below_limit:
        reached = True
        reason = (
            f"the steady state ({model.occupancy:,.0f} entries, {model.ratio:.0%} of max "
            f"{model.table_max:,}) is far below the limit: the table's fill cannot decide "
            "this phase"
        )
    elif (
        steady_from is None
        and (full := first_at_or_above(timeline, model.threshold, load_start_s)) is not None
    ):
        reached = False
        reason = (
            f"the table filled ({level}) {full - load_start_s:.1f} s into the load, but from "
            f"a natural start it turns over only once its first entries expire, "
            f"{settle_s:.0f} s after the load began; the phase lasted {duration_s:.0f} s, so "
            "it measured a table still filling with entries none of which could expire, not "
            "the steady state (no aged warm-up)"
        )
    elif steady_from is None:
        reached = False
        reason = (
            f"the table never reached its steady state: it peaked at {peak:,} entries, "
            f"below {model.threshold:,.0f} (within {model.tolerance:.0%} of the expected "
            f"{level}); a natural load needs about {model.time_to_steady_s:.0f} s to get "
            f"there, the phase lasted {duration_s:.0f} s"
        )
    elif steady_from > allow:
        window_s = duration_s - steady_from
        if window_enough(duration_s, window_s, lookups, all_lookups > 0):
            reached = True
            judged_on = "window"
            reason = (
                f"in steady state from {steady_from:.1f} s after the load started ({level}); "
                f"judged on the {window_s:.0f} s after that ({lookups:,} lookups), not on "
                "the lookups made while the table was still filling"
            )
        else:
            reached = False
            reason = (
                f"the table reached its steady state ({level}) only {steady_from:.1f} s into "
                f"a {duration_s:.0f} s phase, leaving {window_s:.0f} s ({lookups:,} lookups) "
                f"in it: too short to judge (at least {window_wanted_s(duration_s):.0f} s, a "
                f"third of the phase and {MIN_WINDOW_S} s"
                + (f", and {MIN_WINDOW_LOOKUPS} lookups)" if all_lookups else ")")
            )
    else:
        reached = True
        reason = f"in steady state from {steady_from:.1f} s after the load started ({level})"
    return Assessment(
        level=model.level,
        threshold=model.threshold,
        steady_from_s=steady_from,
        reached=reached,
        observed_mean=round(mean, 1),
        observed_peak=peak,
        lookups=lookups,
        timeouts=timeouts,
        batch_ci=(round(b_low, 6), round(b_high, 6)),
        batches=batches,
        reason=reason,
        judged_on=judged_on,
        needed_s=None if reached else needed,
    )


def conclusive_advice(needed_s: float | None, *, aged: bool, can_warm_up: bool) -> str:
    """What would make a phase that was not measured in steady state conclusive."""
    if needed_s is None:
        return (
            "no phase length would: the load never brings the table to its steady state; "
            "check the model's flows against the table"
        )
    run = f"a phase of at least {needed_s:.0f} s (load.duration_s)"
    if aged:
        return f"{run}; the aged warm-up did not bring the table to its steady state"
    if can_warm_up:
        return (
            f"{run}, or the aged warm-up (load.warmup: aged, which starts the phase in its "
            "steady state on a backend that has it)"
        )
    return f"{run} (no warm-up is possible: the load is known only once it ran)"


def not_steady(phases: Iterable[Mapping[str, object]]) -> str | None:
    """The reason the first of ``phases`` (result.json phases) was not measured in steady
    state, or None when all were (or carry no ``steady_state``)."""
    for p in phases:
        ss = p.get("steady_state")
        if isinstance(ss, Mapping) and ss.get("reached") is False:
            return f"{p.get('name')}: {ss.get('reason')}"
    return None


def gate_comparison(
    cmp: Comparison,
    before: Iterable[Mapping[str, object]],
    after: Iterable[Mapping[str, object]],
) -> Comparison:
    """A comparison with a phase that never reached steady state says nothing about the
    steady state: it is inconclusive, whatever the numbers (never "fixed")."""
    reason = not_steady(after) or not_steady(before)
    if reason is None:
        return cmp
    return dataclasses.replace(
        cmp,
        outcome="inconclusive",
        sentence=f"inconclusive: not measured in steady state ({reason}); the numbers were "
        + cmp.sentence,
    )


def describe(ss: Mapping[str, object]) -> str:
    """One sentence for reports: a phase's ``steady_state`` from result.json (pure)."""

    def num(key: str) -> float:
        v = ss.get(key)
        return float(v) if isinstance(v, int | float) else 0.0

    head = "steady state" if ss.get("reached") else "NOT in steady state (inconclusive)"
    reason = str(ss.get("reason", ""))
    if reason.startswith(NOT_MODELLED):  # no expected occupancy to compare with
        return (
            f"{head}: the table averaged {num('observed_mean'):,.0f} "
            f"({num('observed_vs_max'):.0%} of max {num('max'):,.0f}). No warm-up. "
            f"{reason[:1].upper()}{reason[1:]}."
        )
    t = ss.get("time_to_steady_s")
    when = (
        f"reached {float(t):.1f} s after the load started"
        if isinstance(t, int | float)
        else ("never reached")
    )
    text = (
        f"{head}: the load holds {num('expected_occupancy'):,.0f} entries "
        f"({num('occupancy_vs_max'):.2f} x max {num('max'):,.0f}); the table averaged "
        f"{num('observed_mean'):,.0f} ({num('observed_vs_max'):.0%} of max), {when}; a "
        f"natural load needs {num('natural_time_to_steady_s'):.0f} s"
    )
    w = ss.get("warmup")
    if isinstance(w, Mapping) and w.get("method") == "aged-fill":
        flows = w.get("flows")
        opened = ", ".join(
            f"{f.get('opened')} {f.get('kind')}"
            for f in (flows if isinstance(flows, list) else [])
            if isinstance(f, Mapping)
        )
        text += f". Warm-up (aged fill, not measured): {opened} entries"
    elif isinstance(w, Mapping):
        text += ". No warm-up"
    basis = ss.get("model_basis")
    if isinstance(basis, str):
        text += f". Modelled from {basis}"
    text += f". {reason[:1].upper()}{reason[1:]}."
    advice = ss.get("advice")
    if not ss.get("reached") and isinstance(advice, str):
        text += f" To make it conclusive: {advice}."
    return text
