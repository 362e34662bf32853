"""Warm the nodes' conntrack tables up to a phase's steady state, with its turnover.

A natural load needs one lifetime (TIME_WAIT: 120 s by default) before its table is in steady
state. Opening the whole steady-state population at once would give every entry the full
lifetime: a table that cannot turn over for a whole TIME_WAIT, which is the zero-turnover
worst case, not the steady state.

So the warm-up opens real flows of each kind (HTTP connections to the Service, DNS queries to
kube-dns, from the client pods, through the nodes) in chunks, and before each chunk sets the
kind's timeout sysctl in every node's namespace (journaled, through the run's guard) so that,
when the measured load starts, the chunk's entries have the remaining lifetime of their slice
of ``[0, lifetime)``. The kernel fixes an entry's timeout from the namespace's sysctl when the
entry enters its state (measured on this kernel: TIME_WAIT 5, 9 and 13 s -> 4, 8, 12 s left a
moment later), so the table holds the steady state's population with its spread of remaining
lifetimes: as many entries expire each second as the load opens. The timeouts are put back
before the load.

The report (result.json ``steady_state.warmup``) labels it and shows the remaining lifetimes
the entries actually had when the load started, read back with ``conntrack -L``.

It is written once for every backend whose nodes share this kernel: it needs only namespace
handles (:mod:`cthcommon.netns`) for the client pods and the nodes. The netns backend
names its own namespaces; kind's are ``/proc/PID/ns/net`` of the node containers' init and of
the pods' sandboxes (:class:`harness.backends.kube.nodeaccess.DockerNodeAccess`).
:class:`AgedWarmup` is one phase's: whether its model asks for the warm-up, running it, and the
phase's ``steady_state`` with it.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import dns.message
import dns.rdatatype

from cthcommon.netns import run, socket_in
from harness.kernel.sampler import NodeSeries
from harness.kernel.sysctl import read
from harness.results.schema import SteadyStateResult
from harness.steady.model import Flow, SteadyState, aged_timeout, warmup_chunks
from harness.steady.result import steady_result
from loadgen.http.plan import HTTPPlan, HTTPTarget, Mode
from loadgen.http.rawclient import run_http_burst

CT = "net.netfilter."
METHOD = "aged-fill"
LABEL = (
    "warm-up (aged fill): real flows opened before the load, their remaining conntrack "
    "lifetimes spread over [0, timeout) as in steady state; not measured"
)
DEFAULT_RATE = {"http": 1500.0, "dns": 2500.0}  # entries/s before the first chunk says
DNS_IN_FLIGHT = 256
# flows a warm-up can open: the others (a pool, DNS over TCP, NOTRACK) warm up by themselves
WARMABLE = ("dns-udp", "http-short-lived", "http-server-close")


@dataclass
class FlowWarmup:
    kind: str
    wanted: int
    opened: int = 0
    failed: int = 0
    timeouts_s: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "wanted": self.wanted,
            "opened": self.opened,
            "failed": self.failed,
            "chunk_timeouts_s": self.timeouts_s,
        }


class SysctlSetter(Protocol):
    """What the warm-up needs of the run's guard (:class:`harness.kernel.sysctl.SysctlGuard`):
    a journaled per-namespace set."""

    def set(self, key: str, value: int | str, netns: str | None = None) -> None: ...


@dataclass(frozen=True)
class WarmupTargets:
    """Where the warm-up's flows go: the client pods' namespaces, the HTTP Service, and the
    DNS Service with a name it answers; ``node_ns``: every node's namespace (its timeouts are
    set there). Namespaces are handles of :mod:`cthcommon.netns` (names or paths)."""

    client_ns: tuple[str, ...]
    node_ns: tuple[str, ...]
    http_ip: str
    dns_ip: str
    dns_name: str
    http_mode: str = "short-lived"


def remaining_by_kind(listing: str) -> dict[str, list[int]]:
    """Remaining timeouts from ``conntrack -L`` text: ``tcp-TIME_WAIT`` and ``udp`` (pure)."""
    out: dict[str, list[int]] = {}
    for line in listing.splitlines():
        w = line.split()
        if len(w) < 4 or not w[2].isdigit():
            continue
        key = f"tcp-{w[3]}" if w[0] == "tcp" else w[0]
        out.setdefault(key, []).append(int(w[2]))
    return out


def spread(values: Sequence[float]) -> dict[str, float]:
    """n, min, quartiles, max of remaining lifetimes (pure)."""
    v = sorted(values)
    if not v:
        return {"n": 0}

    def q(p: float) -> float:
        return round(v[min(len(v) - 1, int(p * len(v)))], 2)

    return {
        "n": len(v),
        "min": round(v[0], 2),
        "p25": q(0.25),
        "p50": q(0.5),
        "p75": q(0.75),
        "max": round(v[-1], 2),
    }


async def _dns_fill(t: WarmupTargets, n: int) -> tuple[int, int]:
    """``n`` answered UDP queries, one new socket each: one conntrack entry per node on
    the way, as a lookup's socket makes."""
    wire = dns.message.make_query(t.dns_name, dns.rdatatype.A).to_wire()
    loop = asyncio.get_running_loop()
    slots = asyncio.Semaphore(DNS_IN_FLIGHT)
    ok = 0

    async def one(i: int) -> None:
        nonlocal ok
        async with slots:
            s = socket_in(t.client_ns[i % len(t.client_ns)], socket.AF_INET, socket.SOCK_DGRAM)
            try:
                await loop.sock_sendto(s, wire, (t.dns_ip, 53))
                async with asyncio.timeout(1.0):
                    await loop.sock_recv(s, 4096)
                ok += 1
            except (OSError, TimeoutError):
                pass
            finally:
                s.close()

    await asyncio.gather(*(one(i) for i in range(n)))
    return ok, n - ok


async def _http_fill(t: WarmupTargets, n: int) -> tuple[int, int]:
    targets = [HTTPTarget(address=t.http_ip, netns=ns) for ns in t.client_ns]
    mode: Mode = "server-close" if t.http_mode == "server-close" else "short-lived"
    plan = HTTPPlan(mode=mode, connect_timeout_s=1.0, max_in_flight=512)
    res = await run_http_burst(targets, plan, n)
    return res.requests - res.failures, res.failures


def _family(flow: Flow) -> str:
    return "dns" if flow.kind.startswith("dns") else "http"


def warm_up(
    model: SteadyState,
    targets: WarmupTargets,
    guard: SysctlSetter,
    *,
    startup_s: float = 0.5,
) -> dict[str, Any]:
    """Open each warmable flow's steady-state share, aged; put the timeouts back. Returns
    the report for result.json (without the read-back, see :func:`read_back`)."""
    plans: list[tuple[Flow, list[tuple[int, float]]]] = []
    for f in model.flows:
        n = model.warmup_entries(f)
        if n > 0 and f.timeout_sysctl is not None and f.kind in WARMABLE:
            plans.append((f, warmup_chunks(n, f.lifetime_s)))
    t0 = time.monotonic()
    reports: list[FlowWarmup] = []
    left = sum(n for _, ch in plans for n, _ in ch)
    rates = dict(DEFAULT_RATE)
    for f, chunks in plans:
        assert f.timeout_sysctl is not None
        key = CT + f.timeout_sysctl
        original = {ns: read(key, ns) for ns in targets.node_ns}
        rep = FlowWarmup(f.kind, sum(n for n, _ in chunks))
        reports.append(rep)
        fam = _family(f)
        try:
            for n, remaining in chunks:
                # entries opened in this chunk start their lifetime around its middle
                until_load = (left - n / 2) / rates[fam] + startup_s
                timeout = aged_timeout(remaining, until_load)
                rep.timeouts_s.append(timeout)
                for ns in targets.node_ns:
                    guard.set(key, timeout, ns)
                c0 = time.monotonic()
                fill = _dns_fill if fam == "dns" else _http_fill
                ok, bad = asyncio.run(fill(targets, n))
                took = time.monotonic() - c0
                if took > 0 and n >= 50:
                    rates[fam] = n / took
                rep.opened += ok
                rep.failed += bad
                left -= n
        finally:
            for ns, v in original.items():
                guard.set(key, v, ns)
    return {
        "method": METHOD,
        "label": LABEL,
        "flows": [r.as_dict() for r in reports],
        "duration_s": round(time.monotonic() - t0, 3),
        "ended_monotonic": time.monotonic(),
    }


def read_back(node_ns: str) -> tuple[float, dict[str, list[int]]]:
    """The remaining lifetimes in a node's table right now, with the time they were read."""
    listing = run(["conntrack", "-L"], netns=node_ns, check=False, timeout=30).stdout
    return time.monotonic(), remaining_by_kind(listing)


def lifetimes_at_load(
    read_at: float, remaining: dict[str, list[int]], load_started: float
) -> dict[str, dict[str, float]]:
    """Remaining lifetimes as they were when the load started (pure)."""
    gap = max(0.0, load_started - read_at)
    return {k: spread([max(0.0, x - gap) for x in v]) for k, v in sorted(remaining.items())}


def wanted(model: SteadyState, warmup: str) -> bool:
    """Does this phase get the aged warm-up? Not when the load says ``warmup: none``, when its
    steady state is far below the limit (a natural start is already steady), or when the model
    does not know the whole load (a locustfile's) (pure)."""
    return warmup != "none" and not model.far_below_limit and model.unknown is None


class AgedWarmup:
    """One phase's steady state with its aged warm-up, on any backend: build with the phase's
    model and its load's ``warmup``; :meth:`run` before the load (after the tables were
    flushed), :meth:`result` once it is done (result.json ``steady_state``)."""

    def __init__(self, model: SteadyState, warmup: str) -> None:
        self.model = model
        self.wanted = wanted(model, warmup)
        self.report: dict[str, Any] | None = None
        self._read: tuple[float, dict[str, list[int]]] | None = None

    def run(
        self, targets: WarmupTargets, guard: SysctlSetter, *, read_ns: str, startup_s: float
    ) -> None:
        """Warm the tables up (if :attr:`wanted`); read the remaining lifetimes back from
        ``read_ns`` (the client node's namespace) right after. ``startup_s``: the expected time
        from the warm-up's end to the load's start (the last phase's measured gap)."""
        if not self.wanted:
            return
        report = warm_up(self.model, targets, guard, startup_s=startup_s)
        if report["flows"]:
            self.report = report
            self._read = read_back(read_ns)

    def result(
        self,
        series: dict[str, NodeSeries],
        *,
        sampler_t0: float,
        load_start_s: float,
        duration_s: float,
        dns_timeline: Sequence[Sequence[float]],
        natural: str = "natural: no warm-up",
    ) -> SteadyStateResult:
        """``steady_state`` of the phase; after the warm-up with its report (``warmup``: the
        labelled method, its flows and duration, the gap to the load, and the lifetimes the
        entries had when the load started); else a natural start labelled ``natural``."""
        result = steady_result(
            self.model,
            series,
            load_start_s=load_start_s,
            duration_s=duration_s,
            dns_timeline=dns_timeline,
            aged=self.report is not None,
            natural=natural,
        )
        if self.report is not None:
            w = dict(self.report)
            ended = float(w.pop("ended_monotonic"))
            load_started = sampler_t0 + load_start_s
            w["gap_to_load_s"] = round(load_started - ended, 3)
            if self._read is not None:
                w["remaining_lifetimes_at_load_s"] = lifetimes_at_load(
                    self._read[0], self._read[1], load_started
                )
            result["warmup"] = w
        return result
