"""The load worker: ``python -m loadgen.worker --plan PLAN.json --out RESULT.json``.

Runs the DNS and HTTP generators of one phase concurrently in one event loop, with sockets
inside the client pods' namespaces, and writes what they measured as JSON. The harness starts
it as a separate process (journaled by PID) so a load generator can never wedge the
controller, and so other generators (Locust, in-pod images on kind) fit the same contract:
JSON plan in, JSON result out. :class:`WorkerPlan` and :class:`WorkerResult` are that contract,
typed; every backend builds the same ``WorkerPlan`` from the phase plan.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import IO, Any, NotRequired, TypedDict, cast

from cthcommon.errors import BadInput
from cthcommon.loadresult import LatencyHist, LatencyMs
from cthcommon.resolvconf import ResolvConf
from cthcommon.stats import LATENCY_EDGES_S, bucket_latencies
from loadgen.dns.accounting import summarize
from loadgen.dns.engine import run_dns_load
from loadgen.dns.types import ClientPod, DNSPlan, LookupRecord
from loadgen.http.plan import HTTPPlan, HTTPTarget, TimelineRow
from loadgen.http.workers import run_http_load_workers
from loadgen.locust.endpoints import LocustfileStats
from loadgen.locust.launch import STARTUP_ALLOWANCE_S, run_locustfile
from loadgen.locust.userplan import LocustfilePlan
from loadgen.udp.sameport import SamePortPlan, SamePortPod, SamePortResult, run_same_port
from loadgen.udp.statsd import StatsdPlan, StatsdResult, run_statsd

MAX_NAMES = 50
DNS_PLAN_FIELDS = frozenset(f.name for f in fields(DNSPlan))
HTTP_PLAN_FIELDS = frozenset(f.name for f in fields(HTTPPlan))


# --- the plan: what one worker process is asked to do -----------------------------------------
@dataclass(frozen=True)
class PodSpec:
    """A client pod the DNS load runs from: namespace (None: this process's own, inside a
    real pod), IP, and the text of the resolv.conf its resolver reads."""

    netns: str | None
    ip: str
    resolv: str


@dataclass(frozen=True)
class DNSWork:
    pods: tuple[PodSpec, ...]
    plan: DNSPlan


@dataclass(frozen=True)
class HTTPWork:
    targets: tuple[HTTPTarget, ...]
    plan: HTTPPlan
    workers: int = 1  # worker processes (one Python process ~ one core)


@dataclass(frozen=True)
class LocustWork:
    """HTTP load as a user's locustfile: its master runs inside ``netns`` (a client pod's;
    None: this process's own), its workers where ``plan.worker_netns`` says."""

    plan: LocustfilePlan
    netns: str | None = None


@dataclass(frozen=True)
class UDPWork:
    """The same-port client: one connected socket in each of ``pods`` for the whole phase."""

    pods: tuple[SamePortPod, ...]
    plan: SamePortPlan


@dataclass(frozen=True)
class StatsdWork:
    """The one-way statsd-like sender: one unconnected socket in each of ``pods``."""

    pods: tuple[SamePortPod, ...]
    plan: StatsdPlan


@dataclass(frozen=True)
class WorkerPlan:
    """The worker contract's input. Every backend builds it from the phase plan; its JSON form
    (:meth:`to_json`) is the plan file (netns) or the stdin of the worker in a pod (kube)."""

    duration_s: float
    dns: DNSWork | None = None
    http: HTTPWork | None = None
    locust: LocustWork | None = None  # instead of ``http``: the user's own traffic pattern
    udp: UDPWork | None = None  # the same-port client, alongside the rest
    statsd: StatsdWork | None = None  # the one-way sender, alongside the rest
    phase: str = ""
    pod: str = ""  # the client pod that runs it (kube: one worker per pod)
    # CLOCK_MONOTONIC at which the load begins (kube: every pod's worker at the same moment,
    # however long its start took; the node containers share the host's clock). None: at once
    start_at_monotonic: float | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"duration_s": self.duration_s}
        if self.phase:
            out["phase"] = self.phase
        if self.pod:
            out["pod"] = self.pod
        if self.start_at_monotonic is not None:
            out["start_at_monotonic"] = self.start_at_monotonic
        if self.dns is not None:
            out["dns"] = {
                "pods": [{"netns": p.netns, "ip": p.ip, "resolv": p.resolv} for p in self.dns.pods],
                "plan": asdict(self.dns.plan),
            }
        if self.http is not None:
            out["http"] = {
                "targets": [
                    {"netns": t.netns, "ip": t.address, "port": t.port} for t in self.http.targets
                ],
                "plan": {**asdict(self.http.plan), "workers": self.http.workers},
            }
        if self.udp is not None:
            out["udp"] = {
                "pods": [{"netns": p.netns, "ip": p.ip} for p in self.udp.pods],
                "plan": asdict(self.udp.plan),
            }
        if self.statsd is not None:
            out["statsd"] = {
                "pods": [{"netns": p.netns, "ip": p.ip} for p in self.statsd.pods],
                "plan": asdict(self.statsd.plan),
            }
        if self.locust is not None:
            out["locust"] = {
                "netns": self.locust.netns,
                "plan": json.loads(self.locust.plan.to_json()),
            }
        return out

    @classmethod
    def from_json(cls, obj: object) -> WorkerPlan:
        """The plan file's content (unknown plan keys are ignored, missing ones are bad input)."""
        if not isinstance(obj, dict):
            raise BadInput("the worker plan is not a JSON object", field="plan")
        try:
            dns = http = None
            if "dns" in obj:
                d = obj["dns"]
                dns = DNSWork(
                    pods=tuple(PodSpec(p["netns"], p["ip"], p["resolv"]) for p in d["pods"]),
                    plan=DNSPlan(**{k: v for k, v in d["plan"].items() if k in DNS_PLAN_FIELDS}),
                )
            if "http" in obj:
                h = obj["http"]
                http = HTTPWork(
                    targets=tuple(
                        HTTPTarget(address=t["ip"], port=t["port"], netns=t["netns"])
                        for t in h["targets"]
                    ),
                    plan=HTTPPlan(**{k: v for k, v in h["plan"].items() if k in HTTP_PLAN_FIELDS}),
                    workers=int(h["plan"].get("workers", 1)),
                )
            locust = None
            if "locust" in obj:
                lw = obj["locust"]
                locust = LocustWork(
                    plan=LocustfilePlan.from_json(json.dumps(lw["plan"])), netns=lw["netns"]
                )
            udp = None
            if "udp" in obj:
                u = obj["udp"]
                udp = UDPWork(
                    pods=tuple(SamePortPod(p["netns"], p["ip"]) for p in u["pods"]),
                    plan=SamePortPlan(**u["plan"]),
                )
            statsd = None
            if "statsd" in obj:
                st = obj["statsd"]
                statsd = StatsdWork(
                    pods=tuple(SamePortPod(p["netns"], p["ip"]) for p in st["pods"]),
                    plan=StatsdPlan(**st["plan"]),
                )
            return cls(
                duration_s=float(obj["duration_s"]),
                dns=dns,
                http=http,
                locust=locust,
                udp=udp,
                statsd=statsd,
                phase=str(obj.get("phase", "")),
                pod=str(obj.get("pod", "")),
                start_at_monotonic=(
                    None
                    if obj.get("start_at_monotonic") is None
                    else float(obj["start_at_monotonic"])
                ),
            )
        except (KeyError, TypeError) as e:
            raise BadInput(f"the worker plan lacks or mistypes {e}", field="plan") from e


# --- the result: what it measured ----------------------------------------------------------
class WorkerDNS(TypedDict):
    """``summarize`` of the lookups, plus what only the worker knows."""

    lookups: int
    timeouts: int
    timeout_rate: float
    failed: int
    failed_rate: float
    unfinished: int
    full_timeout_waits: int
    full_timeout_rate: float
    queries_sent: int
    queries_unanswered: int
    queries_per_lookup: float
    latency_ms: LatencyMs
    resolver: str
    timeline: list[list[float]]
    elapsed_s: float
    latency_hist: LatencyHist
    by_name: dict[str, dict[str, float]]
    outcomes: dict[str, int]
    waited: NotRequired[int]  # lookups that waited for any resend (musl: timeout/attempts)
    waited_rate: NotRequired[float]
    by_resolver: NotRequired[dict[str, dict[str, int]]]
    latency_sum_s: NotRequired[float]


class WorkerHTTP(TypedDict):
    mode: str
    requests: int
    failures: int
    failure_rate: float
    new_connections: int
    connect_failures: int
    elapsed_s: float
    latency_ms: LatencyMs
    errors: dict[str, int]
    fill_connections: int
    fill_s: float | None
    timeline: list[TimelineRow]


class WorkerResult(TypedDict):
    """The worker contract's output (the result file; a kube pod prints it)."""

    dns: NotRequired[WorkerDNS]
    http: NotRequired[WorkerHTTP]
    locust: NotRequired[LocustfileStats]
    udp: NotRequired[SamePortResult]
    statsd: NotRequired[StatsdResult]
    started_monotonic: NotRequired[float]  # CLOCK_MONOTONIC when the load began


async def _dns(work: DNSWork) -> WorkerDNS:
    pods = [ClientPod(p.netns, p.ip, ResolvConf.parse(p.resolv)) for p in work.pods]
    t0 = time.monotonic()
    records = await run_dns_load(pods, work.plan)
    summary = summarize(records, timeout_s=pods[0].resolv.timeout)
    outcomes: dict[str, int] = {}
    for r in records:
        outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
    hist: LatencyHist = {
        "edges_s": list(LATENCY_EDGES_S),
        "counts": bucket_latencies([r.latency_s for r in records]),
    }
    return cast(
        WorkerDNS,
        {
            **summary,
            "elapsed_s": round(time.monotonic() - t0, 3),
            "latency_hist": hist,
            "by_name": by_name(records),
            "outcomes": outcomes,
        },
    )


def by_name(records: list[LookupRecord]) -> dict[str, dict[str, float]]:
    """Queries per lookup and timeouts for each name looked up (ndots amplification)."""
    out: dict[str, dict[str, float]] = {}
    many = len({r.name for r in records}) > MAX_NAMES
    for r in records:
        # thousands of distinct generated names are grouped by their shape (digits -> {n})
        key = re.sub(r"\d+", "{n}", r.name) if many else r.name
        d = out.setdefault(key, {"lookups": 0, "queries": 0, "full_timeout_waits": 0})
        d["lookups"] += 1
        d["queries"] += r.queries_sent
        d["full_timeout_waits"] += r.full_timeout_waits
    for d in out.values():
        d["queries_per_lookup"] = round(d["queries"] / d["lookups"], 3)
    return out


async def _http(work: HTTPWork) -> WorkerHTTP:
    res = await run_http_load_workers(list(work.targets), work.plan, work.workers)
    base = res.to_http_result()
    return WorkerHTTP(
        mode=base["mode"],
        requests=base["requests"],
        failures=base["failures"],
        failure_rate=base["failure_rate"],
        new_connections=base["new_connections"],
        connect_failures=res.connect_failures,
        elapsed_s=round(res.elapsed_s, 3),
        latency_ms=LatencyMs(**res.latency_ms),
        errors=res.errors,
        fill_connections=work.plan.fill_connections,
        fill_s=None if res.fill_s is None else round(res.fill_s, 3),
        timeline=list(res.timeline),
    )


async def run_plan(plan: WorkerPlan) -> WorkerResult:
    # CLOCK_MONOTONIC is system-wide: the harness places the load start on its own timeline.
    if plan.start_at_monotonic is not None:
        await asyncio.sleep(max(0.0, plan.start_at_monotonic - time.monotonic()))
    started = time.monotonic()
    out = WorkerResult()
    dns = asyncio.create_task(_dns(plan.dns)) if plan.dns is not None else None
    http = asyncio.create_task(_http(plan.http)) if plan.http is not None else None
    udp = (
        asyncio.create_task(run_same_port(list(plan.udp.pods), plan.udp.plan)) if plan.udp else None
    )
    statsd = (
        asyncio.create_task(run_statsd(list(plan.statsd.pods), plan.statsd.plan))
        if plan.statsd
        else None
    )
    locust = None
    if plan.locust is not None:
        work = plan.locust
        limit = work.plan.duration_s + STARTUP_ALLOWANCE_S
        locust = asyncio.create_task(
            asyncio.to_thread(run_locustfile, work.plan, netns=work.netns, timeout_s=limit)
        )
    if dns is not None:
        out["dns"] = await dns
    if http is not None:
        out["http"] = await http
    if locust is not None:
        out["locust"] = await locust
    if udp is not None:
        out["udp"] = await udp
    if statsd is not None:
        out["statsd"] = await statsd
    out["started_monotonic"] = started
    return out


READY = "ready"  # what a cued worker writes once it can start at once (``--cue``)
MAX_START_IN_S = 60.0


def cue_line(start_in_s: float) -> str:
    """The line that starts a cued worker ``start_in_s`` after it reads it (:func:`await_cue`)."""
    return json.dumps({"start_in_s": start_in_s}) + "\n"


def await_cue(plan: WorkerPlan, cue_in: IO[str], ready_out: IO[str]) -> WorkerPlan:
    """The started-on-cue handshake (kube: ``kubectl exec`` and the worker's start take seconds,
    and differ between pods). The worker says it is ready, then reads one line,
    ``{"start_in_s": S}``, and begins its load S seconds after reading it, on its own clock,
    so the pods of a phase start together however long each took to get here, and a node's
    clock need not be the harness's. EOF before the line: BadInput (the harness went away)."""
    ready_out.write(READY + "\n")
    ready_out.flush()
    line = cue_in.readline()
    try:
        start_in_s = float(json.loads(line)["start_in_s"])
    except (ValueError, KeyError, TypeError) as e:
        raise BadInput(
            'the start cue must be one line {"start_in_s": SECONDS}',
            field="cue",
            value=line[:80],
        ) from e
    if not 0 <= start_in_s <= MAX_START_IN_S:
        raise BadInput("out of range", field="start_in_s", value=start_in_s)
    return replace(plan, start_at_monotonic=time.monotonic() + start_in_s)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="loadgen.worker")
    ap.add_argument("--plan", required=True, help="the plan file, or - for one line on stdin")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument(
        "--cue",
        action="store_true",
        help="after reading the plan, write 'ready' on file descriptor 3 and start the load "
        'on the next stdin line, {"start_in_s": S}',
    )
    args = ap.parse_args(argv)
    text = sys.stdin.readline() if args.plan == "-" else Path(args.plan).read_text()
    plan = WorkerPlan.from_json(json.loads(text))
    if args.cue:
        with open(3, "w", closefd=False) as ready_out:
            plan = await_cue(plan, sys.stdin, ready_out)
    result = asyncio.run(run_plan(plan))
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
