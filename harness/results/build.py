"""Shape one phase's raw measurements into the result.json contract (pure)."""

from __future__ import annotations

from typing import Any

from cthcommon.loadresult import HTTPResult
from cthcommon.stats import wilson
from harness.judge.alerts import evaluate_near_full
from harness.judge.diagnosis import diagnose_phase
from harness.judge.gate import phase_verdict
from harness.kernel.sampler import NodeSeries
from harness.measurement import PhaseMeasurement
from harness.results.locust import locust_result
from harness.results.schema import (
    Agreement,
    ConntrackResult,
    DiagnosisResult,
    DNSResult,
    ExpectationResult,
    NodeConntrack,
    PhaseResult,
    RaceResult,
    ServerResult,
    StatesTaken,
)
from harness.scenario.model import Phase
from loadgen.worker import WorkerResult


def _remediation_label(r: Any) -> str:
    fields = {k: v for k, v in r.model_dump().items() if k != "kind" and v is not None}
    if not fields:
        return str(r.kind)
    if r.kind == "resolver-option":
        return "resolver-option: " + " ".join(
            o["name"] + (f":{o['value']}" if o.get("value") else "") for o in fields["options"]
        )
    return f"{r.kind}: " + ", ".join(f"{k}={v}" for k, v in fields.items())


def _timeline_with_drops(s: NodeSeries) -> list[list[float]]:
    """[t, count, drops so far] rows: the drop total comes from the 2 Hz stat samples."""
    base = s.stat_start.get("drop", 0)
    stats = s.stat_timeline
    out: list[list[float]] = []
    j = -1
    for t, count in s.timeline:
        while j + 1 < len(stats) and stats[j + 1][0] <= t:
            j += 1
        drops = stats[j][1].get("drop", 0) - base if j >= 0 else 0
        out.append([t, float(count), float(drops)])
    return out


def node_result(name: str, m: PhaseMeasurement) -> NodeConntrack:
    s = m.series[name]
    d = s.delta
    c = m.node_counters.get(name, {})
    node = NodeConntrack(
        node=name,
        max=m.conntrack_max,
        peak_count=s.peak,
        drop=d.get("drop", 0),
        early_drop=d.get("early_drop", 0),
        insert_failed=d.get("insert_failed", 0),
        clash_resolve=d.get("clash_resolve", 0),
        insert=d.get("insert", 0),
        invalid=d.get("invalid", 0),
        table_full_lines=len(s.table_full),
        states_at_peak=s.states_at_peak,
        dns_entries=s.dns_entries_at_peak,
        dns_in=c.get("dns_in", 0),
        dns_out=c.get("dns_out", 0),
        timeline=_timeline_with_drops(s),
    )
    if s.snapshot_at is not None:  # the state snapshot is not at the peak: say when it was
        t_s, count, why = s.snapshot_at
        node["states_taken"] = StatesTaken(
            t_s=t_s, count=count, fill=round(count / s.max, 4) if s.max else 0.0, why=why
        )
    return node


def conntrack_result(m: PhaseMeasurement) -> ConntrackResult:
    nodes = [node_result(n, m) for n in m.series]
    peak = max((n["peak_count"] for n in nodes), default=0)
    log = [line for s in m.series.values() for line in s.table_full]
    return ConntrackResult(
        max=m.conntrack_max,
        peak_count=peak,
        peak_fill=round(peak / m.conntrack_max, 4) if m.conntrack_max else 0.0,
        drop=sum(n["drop"] for n in nodes),
        early_drop=sum(n["early_drop"] for n in nodes),
        insert_failed=sum(n["insert_failed"] for n in nodes),
        clash_resolve=sum(n["clash_resolve"] for n in nodes),
        table_full_lines=len(log),
        dns_entries=sum(n["dns_entries"] for n in nodes),
        table_full_log=log[:200],
        nodes=nodes,
    )


def dns_result(load: WorkerResult) -> DNSResult:
    w = load["dns"]
    lo, hi = wilson(w["timeouts"], w["lookups"])
    d: dict[str, Any] = dict(w)
    d["timeout_rate_ci"] = {"rate": d["timeout_rate"], "low": round(lo, 6), "high": round(hi, 6)}
    return DNSResult(**d)  # type: ignore[typeddict-item,no-any-return]


def dns_dropped(c: dict[str, int]) -> int:
    """DNS queries that entered a node and never left it: not forwarded (``dns_out``) and
    not delivered to a server on the node itself (``dns_local``: NodeLocal DNSCache)."""
    return max(0, c.get("dns_in", 0) - c.get("dns_out", 0) - c.get("dns_local", 0))


# the counters the agreement adds up; a backend lists the ones it cannot read in ``unavailable``
UNMEASURED_COUNTERS = ("server_counters", "node_dns_counters")


def agreement(dns: DNSResult, m: PhaseMeasurement, server: ServerResult) -> Agreement:
    """Account for every query the clients lost, with the kernel's and the servers' counts.

    The node counters sit before conntrack (prerouting -400) and after NAT (postrouting 500).
    A table-full drop happens in between and shows as in - out. An insert_failed drop happens
    at conntrack confirm, after the last hook, so only the kernel's insert_failed sees it.
    """
    node_dropped = sum(dns_dropped(c) for c in m.node_counters.values())
    confirm = sum(s.delta.get("insert_failed", 0) for s in m.series.values())
    server_unanswered = max(0, server["received"] - server["answered"])
    client = dns["queries_unanswered"]
    missing = [k for k in UNMEASURED_COUNTERS if k in m.observed.unavailable]
    if missing:  # a backend that cannot count them says so, and nothing is added up
        return Agreement(
            client_unanswered=client,
            node_dropped=node_dropped,
            server_unanswered=server_unanswered,
            explained=(
                f"{client} unanswered at the client; where they were lost is not measured on "
                f"this backend ({', '.join(missing)}: see unavailable)"
            ),
        )
    gap = client - node_dropped - server_unanswered
    parts = [
        f"{node_dropped} dropped inside the nodes before NAT (conntrack)",
        f"{server_unanswered} received but not answered by the DNS pods",
    ]
    if client == 0 and node_dropped == 0 and confirm == 0:
        text = "no DNS query was lost anywhere"
    elif gap == 0:
        text = "every unanswered query is accounted for: " + ", ".join(parts)
    elif 0 < gap <= confirm:
        text = (
            f"every unanswered query is accounted for: {', '.join(parts)}, and {gap} lost "
            f"at conntrack confirm (insert_failed={confirm}, after the last packet counter)"
        )
    else:
        text = (
            f"{client} unanswered at the client vs {', '.join(parts)}: a gap of {gap}. "
            "Queries still in flight when the load stopped, or replies lost on the way back"
        )
    return Agreement(
        client_unanswered=client,
        node_dropped=node_dropped,
        server_unanswered=server_unanswered,
        explained=text,
    )


def build_phase_result(phase: Phase, repeat_index: int, m: PhaseMeasurement) -> PhaseResult:
    dns = dns_result(m.load)
    http_raw = m.load.get("http")
    http: HTTPResult | None = None
    if http_raw:
        http = HTTPResult(
            mode=http_raw["mode"],
            requests=http_raw["requests"],
            failures=http_raw["failures"],
            failure_rate=http_raw["failure_rate"],
            new_connections=http_raw["new_connections"],
        )
        rows = http_raw.get("timeline") or []
        http["timeline"] = [
            [int(r["t_s"]), int(r["requests"]), int(r["failures"]), int(r["new_connections"])]
            for r in rows
            if isinstance(r, dict) and "t_s" in r
        ]
    server = ServerResult(
        received=m.server_counters.get("rx", 0), answered=m.server_counters.get("tx", 0)
    )
    per_pod: dict[str, dict[str, int]] = {}
    for key, v in m.server_counters.items():
        pod, _, k = key.rpartition("/")
        if pod and pod != "upstream":
            per_pod.setdefault(pod, {})["received" if k == "rx" else "answered"] = v
    if per_pod:
        server["per_pod"] = per_pod
    if "upstream/rx" in m.server_counters:
        server["upstream_received"] = m.server_counters["upstream/rx"]
    node_totals: dict[str, int] = {}
    for c in m.node_counters.values():
        for k, v in c.items():
            node_totals[k] = node_totals.get(k, 0) + v
    seen = m.observed
    if seen.fault is not None:
        node_totals["fault_hits"] = seen.fault["hits"]
    node_totals["dns_dropped"] = sum(dns_dropped(c) for c in m.node_counters.values())
    result = PhaseResult(
        name=phase.name,
        repeat_index=repeat_index,
        remediations=[_remediation_label(r) for r in phase.remediations],
        injected=phase.injected,
        faults=[f.model_dump() for f in phase.faults],
        duration_s=round(m.duration_s, 3),
        dns=dns,
        http=http,
        conntrack=conntrack_result(m),
        server=server,
        node=node_totals,
        agreement=agreement(dns, m, server),
        expectations=[],
        verdict="pass",
    )
    if seen.fault is not None:
        result["fault"] = seen.fault
    if seen.capture is not None:
        result["capture"] = seen.capture
    if seen.rollout is not None:
        result["rollout"] = seen.rollout
    if seen.udp is not None:
        result["udp"] = seen.udp
    if seen.endpoints is not None:
        result["endpoints"] = seen.endpoints
    if seen.statsd is not None:
        result["statsd"] = seen.statsd
    if seen.kube_proxy is not None:
        result["kube_proxy"] = seen.kube_proxy
    if m.load.get("locust"):
        result["locust"] = locust_result(m.load["locust"])
    if seen.steady_state is not None:
        result["steady_state"] = seen.steady_state
    result["unavailable"] = dict(seen.unavailable)
    result["notes"] = list(seen.notes)
    checks: list[ExpectationResult] = []
    window_view = judged_view(result)
    for exp in phase.expectations():
        judged = window_view if window_view is not None and exp.metric in WINDOW_METRICS else None
        ok, observed = exp.evaluate(judged if judged is not None else result)
        check = ExpectationResult(expect=str(exp), observed=observed, ok=ok)
        if judged is not None:
            check["judged_on"] = "window"
        checks.append(check)
    locust = m.load.get("locust")
    result["alerts"] = {"ConntrackTableNearFull": evaluate_near_full(result)}
    if not phase.injected and m.load.get("dns") and not (m.load.get("http") or locust):
        # a DNS-only natural phase is a race attempt: name what the kernel did
        result["race"] = race_result(result, m.kernel)
    d = diagnose_phase(result)
    result["diagnosis"] = DiagnosisResult(
        cause=d.cause,
        injected=d.injected,
        confidence=d.confidence,
        remediation=d.remediation,
        evidence=d.evidence,
    )
    result["expectations"] = checks
    result["verdict"] = phase_verdict(checks, result.get("steady_state"))
    return result


# what the steady window measures: a phase judged on its window reads these from it
WINDOW_METRICS = frozenset({"dns.lookups", "dns.timeouts", "dns.timeout_rate"})


def judged_view(result: PhaseResult) -> dict[str, Any] | None:
    """The phase as its DNS expectations see it when it is judged on its steady window
    (``steady_state.judged_on`` "window"): ``dns.lookups``, ``dns.timeouts`` and
    ``dns.timeout_rate`` from the window; None when the whole phase is judged."""
    ss = result.get("steady_state")
    if ss is None or ss.get("judged_on") != "window":
        return None
    w = ss["window"]
    dns = {
        **result["dns"],
        "lookups": int(w["lookups"]),
        "timeouts": int(w["timeouts"]),
        "timeout_rate": float(w["timeout_rate"]),
    }
    return {**result, "dns": dns}


def race_result(p: PhaseResult, kernel: str) -> RaceResult:
    """Name what the natural race did: only counters and lost replies decide, never a guess.

    The race shows as ``insert_failed`` (with a ``drop`` each). A table that filled up also
    counts ``drop``, and then lost replies say nothing about the race: that is "confounded",
    never "reproduced" (a host whose nf_conntrack_max was left small reads like this)."""
    ct = p["conntrack"]
    nodes = ct["nodes"]
    insert_failed = {n["node"]: n["insert_failed"] for n in nodes}
    drop = {n["node"]: n["drop"] for n in nodes}
    clash = {n["node"]: n["clash_resolve"] for n in nodes}
    dns = p["dns"]
    pairs = dns["queries_sent"] // 2
    missing = dns["queries_unanswered"]
    failed_inserts = sum(insert_failed.values())
    lost_in_nodes = failed_inserts + sum(drop.values())
    full_nodes = [n["node"] for n in nodes if n["table_full_lines"] > 0 or _full(n)]
    if full_nodes:
        verdict = (
            f"confounded: the table was full on {', '.join(full_nodes)} (max {ct['max']}, "
            f"drop {sum(drop.values())}, {ct['table_full_lines']} table-full messages), so "
            f"{missing} missing replies are exhaustion, not the race; give the table room "
            "(host nf_conntrack_max) and run again"
        )
    elif missing > 0 and failed_inserts > 0:
        verdict = (
            f"reproduced: {missing} replies missing, insert_failed "
            f"{failed_inserts}, drop {sum(drop.values())}"
        )
    elif sum(clash.values()) > 0 and lost_in_nodes == 0 and missing == 0:
        verdict = f"kernel resolved {sum(clash.values())} clashes, 0 drops"
    else:
        verdict = "inconclusive: " + (
            f"{missing} replies missing without a failed conntrack insert"
            if missing
            else "no clash observed, so the race was not exercised"
        )
    return RaceResult(
        verdict=verdict,
        kernel=kernel,
        pairs_sent=pairs,
        replies_missing=missing,
        insert_failed=insert_failed,
        drop=drop,
        clash_resolve=clash,
    )


def _full(node: NodeConntrack) -> bool:
    """The sampler saw the table at its limit (the kernel log may be unreadable)."""
    return node["max"] > 0 and node["peak_count"] >= node["max"]
