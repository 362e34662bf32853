"""Realistic ``result.json`` documents, built by a small deterministic model of the data path.

They feed the report, diagnose and metrics tests and ``report`` demos. Numbers are not typed in:
a table fills at the new-connection rate until it reaches ``max``, DNS through a full table
times out, an injected race window drops the second packet of a same-port pair with its
probability, and every summary (rates, intervals, percentiles, expectations, alerts) is
computed from those simulated lookups by the same code the runner uses.

``python -m tests.sample_results DIR`` writes them as JSON files.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cthcommon.stats import LATENCY_EDGES_S, bucket_latencies, wilson
from harness.judge.gate import phase_verdict, run_verdict
from harness.results.schema import (
    SCHEMA_VERSION,
    ConntrackResult,
    DNSResult,
    Environment,
    ExpectationResult,
    NodeConntrack,
    PhaseResult,
    RunResult,
    Verdict,
)
from harness.scenario.expect import Expectation

SAMPLE_INTERVAL_S = 0.5
RESOLVER_TIMEOUT_S = 5.0
RESOLVER_ATTEMPTS = 2


@dataclass(frozen=True)
class PhaseModel:
    """What a phase does to the data path, in the terms the harness controls."""

    name: str
    remediations: tuple[str, ...] = ()
    duration_s: float = 20.0
    conntrack_max: int = 2048
    new_conns_per_s: float = 400.0  # short-lived HTTP connections from the client node
    dns_per_s: float = 40.0
    base_entries: int = 40
    race_probability: float = 0.0  # INJECTED race window (0 = no fault)
    same_socket_pairs: bool = True  # False: single-request-reopen / NOTRACK, the rule never hits
    server_capacity_per_s: float = 1e9  # DNS answers per second the servers can give
    expect: tuple[str, ...] = ()
    repeat_index: int = 0
    http_mode: str = "short-lived"
    extra_nodes: tuple[str, ...] = ("node-2",)
    seed: int = 1
    # result.json's steady_state for the phase (None: the backend did not judge it), e.g.
    # from harness.steady.result.steady_result; the verdict follows harness.judge.gate
    steady_state: Mapping[str, Any] | None = None


@dataclass
class _Sim:
    latencies: list[float] = field(default_factory=list)
    timeouts: int = 0
    failed: int = 0
    full_waits: int = 0
    queries_sent: int = 0
    unanswered: int = 0
    dns_timeline: list[list[float]] = field(default_factory=list)
    ct_timeline: list[list[float]] = field(default_factory=list)
    drop: int = 0
    peak: int = 0
    fault_hits: int = 0
    node_dropped: int = 0
    server_received: int = 0
    server_answered: int = 0
    table_full_lines: int = 0


def _percentile(sorted_xs: list[float], q: float) -> float:
    if not sorted_xs:
        return 0.0
    i = min(len(sorted_xs) - 1, max(0, round(q * (len(sorted_xs) - 1))))
    return sorted_xs[i]


def _ms(sorted_s: list[float], q: float) -> float:
    return round(_percentile(sorted_s, q) * 1000, 3)


def _simulate(m: PhaseModel) -> _Sim:
    rng = random.Random(m.seed * 7919 + m.repeat_index)
    s = _Sim()
    count = float(m.base_entries)
    steps = round(m.duration_s / SAMPLE_INTERVAL_S)
    per_sample_conns = m.new_conns_per_s * SAMPLE_INTERVAL_S
    per_sample_dns = m.dns_per_s * SAMPLE_INTERVAL_S
    second_lookups, second_timeouts = 0, 0
    served_this_second = 0.0
    for i in range(1, steps + 1):
        t = i * SAMPLE_INTERVAL_S
        full = count >= m.conntrack_max
        # TCP connections: each needs a slot; when full they are dropped (SYN retried later)
        if full:
            s.drop += round(per_sample_conns)
            if i % 10 == 0:  # the kernel's rate-limited "table full" line
                s.table_full_lines += 1
            if rng.random() < 0.2:  # GC evicts TIME_WAIT down to just under 95 %
                count = m.conntrack_max * 0.949
        else:
            count = min(float(m.conntrack_max), count + per_sample_conns)
        # DNS lookups started in this sample
        n_lookups = int(per_sample_dns + rng.random())
        for _ in range(n_lookups):
            s.queries_sent += 2
            full_now = count >= m.conntrack_max
            if full_now:
                s.drop += 2 * RESOLVER_ATTEMPTS
                s.node_dropped += 2 * RESOLVER_ATTEMPTS
                s.queries_sent += 2 * (RESOLVER_ATTEMPTS - 1)
                s.unanswered += 2 * RESOLVER_ATTEMPTS
                s.timeouts += 1
                s.failed += 1
                s.full_waits += RESOLVER_ATTEMPTS
                s.latencies.append(RESOLVER_TIMEOUT_S * RESOLVER_ATTEMPTS + rng.random() * 0.01)
                second_timeouts += 1
            else:
                if not full_now and count < m.conntrack_max:
                    count += 1  # the UDP entry (30 s timeout) also takes a slot
                served_this_second += 2
                overloaded = served_this_second > m.server_capacity_per_s
                s.server_received += 2
                if overloaded:
                    s.unanswered += 1
                    s.server_answered += 1
                    s.timeouts += 1
                    s.full_waits += 1
                    s.latencies.append(RESOLVER_TIMEOUT_S + rng.random() * 0.01)
                    second_timeouts += 1
                elif (
                    m.race_probability and m.same_socket_pairs and rng.random() < m.race_probability
                ):
                    s.fault_hits += 1
                    s.node_dropped += 1
                    s.server_received -= 1
                    s.server_answered += 1
                    s.unanswered += 1
                    s.timeouts += 1
                    s.full_waits += 1
                    s.latencies.append(RESOLVER_TIMEOUT_S + rng.lognormvariate(-7, 0.5))
                    second_timeouts += 1
                else:
                    s.server_answered += 2
                    s.latencies.append(rng.lognormvariate(-7, 0.6))
            second_lookups += 1
        s.peak = max(s.peak, round(count))
        s.ct_timeline.append([t, round(count), s.drop])
        if i % round(1 / SAMPLE_INTERVAL_S) == 0:
            # like the load generator: row t counts the lookups started in [t, t+1)
            s.dns_timeline.append([t - 1, second_lookups, second_timeouts])
            second_lookups, second_timeouts, served_this_second = 0, 0, 0.0
    return s


def _node(name: str, m: PhaseModel, s: _Sim | None) -> NodeConntrack:
    if s is None:  # a quiet node: a few long-lived entries
        timeline = [[i * SAMPLE_INTERVAL_S, 12, 0] for i in range(1, round(m.duration_s / 0.5) + 1)]
        return {
            "node": name,
            "max": m.conntrack_max,
            "peak_count": 12,
            "drop": 0,
            "early_drop": 0,
            "insert_failed": 0,
            "clash_resolve": 0,
            "insert": 12,
            "invalid": 0,
            "table_full_lines": 0,
            "states_at_peak": {"ESTABLISHED": 12},
            "dns_entries": 0,
            "dns_in": 0,
            "dns_out": 0,
            "timeline": timeline,
        }
    time_wait = max(0, s.peak - m.base_entries)
    return {
        "node": name,
        "max": m.conntrack_max,
        "peak_count": s.peak,
        "drop": s.drop,
        "early_drop": 1 if s.drop else 0,
        "insert_failed": 0,
        "clash_resolve": 0,
        "insert": round(m.new_conns_per_s * m.duration_s),
        "invalid": 0,
        "table_full_lines": s.table_full_lines,
        "states_at_peak": {"TIME_WAIT": time_wait, "ESTABLISHED": m.base_entries},
        "dns_entries": 0,
        "dns_in": s.queries_sent,
        "dns_out": s.queries_sent - s.node_dropped,
        "timeline": s.ct_timeline,
    }


def build_phase(m: PhaseModel) -> PhaseResult:
    """Simulate one phase and summarise it exactly as result.json carries it."""
    s = _simulate(m)
    lookups = len(s.latencies)
    lat = sorted(s.latencies)
    lo, hi = wilson(s.timeouts, lookups)
    rate = s.timeouts / lookups if lookups else 0.0
    dns: DNSResult = {
        "lookups": lookups,
        "timeouts": s.timeouts,
        "timeout_rate": rate,
        "timeout_rate_ci": {"rate": rate, "low": lo, "high": hi},
        "failed": s.failed,
        "failed_rate": s.failed / lookups if lookups else 0.0,
        "full_timeout_waits": s.full_waits,
        "full_timeout_rate": s.full_waits / lookups if lookups else 0.0,
        "queries_sent": s.queries_sent,
        "queries_unanswered": s.unanswered,
        "queries_per_lookup": s.queries_sent / lookups if lookups else 0.0,
        "latency_ms": {
            "p50": _ms(lat, 0.5),
            "p90": _ms(lat, 0.9),
            "p99": _ms(lat, 0.99),
            "max": _ms(lat, 1.0),
        },
        "resolver": "glibc",
        "timeline": s.dns_timeline,
        "latency_hist": {"edges_s": list(LATENCY_EDGES_S), "counts": bucket_latencies(lat)},
    }
    nodes = [_node("node-1", m, s)] + [_node(n, m, None) for n in m.extra_nodes]
    log = [
        f"[{100 + i * 5:>5}.{i:06d}] nf_conntrack: table full in netns 4026532{i % 9}12, "
        "dropping packet"
        for i in range(s.table_full_lines)
    ]
    ct: ConntrackResult = {
        "max": m.conntrack_max,
        "dns_entries": 0,
        "peak_count": max(n["peak_count"] for n in nodes),
        "peak_fill": max(n["peak_count"] for n in nodes) / m.conntrack_max,
        "drop": sum(n["drop"] for n in nodes),
        "early_drop": sum(n["early_drop"] for n in nodes),
        "insert_failed": 0,
        "clash_resolve": 0,
        "table_full_lines": s.table_full_lines,
        "table_full_log": log,
        "nodes": nodes,
    }
    injected = m.race_probability > 0
    phase: PhaseResult = {
        "name": m.name,
        "repeat_index": m.repeat_index,
        "remediations": list(m.remediations),
        "injected": injected,
        "faults": [{"kind": "race-window", "probability": m.race_probability, "injected": True}]
        if injected
        else [],
        "duration_s": m.duration_s,
        "dns": dns,
        "http": {
            "mode": m.http_mode,
            "requests": round(m.new_conns_per_s * m.duration_s),
            "failures": s.drop // 4,
            "failure_rate": 0.0,
            "new_connections": round(m.new_conns_per_s * m.duration_s),
        },
        "conntrack": ct,
        "server": {"received": s.server_received, "answered": s.server_answered},
        "node": {"dns_dropped": s.node_dropped},
        "agreement": {
            "client_unanswered": s.unanswered,
            "node_dropped": s.node_dropped,
            "server_unanswered": s.server_received - s.server_answered,
            "explained": _explain(s),
        },
        "expectations": [],
        "verdict": "pass",
    }
    if phase["http"] is not None and phase["http"]["requests"]:
        phase["http"]["failure_rate"] = phase["http"]["failures"] / phase["http"]["requests"]
    if injected:
        phase["fault"] = {
            "kind": "race-window",
            "probability": m.race_probability,
            "hits": s.fault_hits,
            "injected": True,
        }
    if m.steady_state is not None:
        phase["steady_state"] = dict(m.steady_state)  # type: ignore[typeddict-item]
    results: list[ExpectationResult] = []
    for text in m.expect:
        e = Expectation.parse(text)
        ok, observed = e.evaluate(phase)
        results.append({"expect": str(e), "observed": observed, "ok": ok})
    phase["expectations"] = results
    phase["verdict"] = phase_verdict(results, phase.get("steady_state"))
    from harness.judge.alerts import NEAR_FULL_ALERT, evaluate_near_full

    phase["alerts"] = {NEAR_FULL_ALERT: evaluate_near_full(phase, SAMPLE_INTERVAL_S)}
    return phase


def _explain(s: _Sim) -> str:
    server_gap = s.server_received - s.server_answered
    parts = []
    if s.node_dropped:
        parts.append(f"{s.node_dropped} DNS packets entered a node and never left it")
    if server_gap:
        parts.append(f"{server_gap} reached the DNS servers and were not answered")
    return "; ".join(parts) or "every query was answered"


def _environment() -> Environment:
    return {
        "kernel": "6.18.0",
        "backend": "netns",
        "hostname": "ci-runner-1",
        "python": "3.11.2",
        "sysctls": {
            "net.netfilter.nf_conntrack_max": "2048",
            "net.netfilter.nf_conntrack_tcp_timeout_time_wait": "120",
            "net.netfilter.nf_conntrack_udp_timeout": "30",
        },
        "tools": {"iptables": "1.8.9 (nf_tables)", "conntrack": "1.4.7", "dnsmasq": "2.89"},
    }


def build_run(
    name: str, models: list[PhaseModel], *, scenario_file: str | None = None
) -> RunResult:
    phases = [build_phase(m) for m in models]
    verdict: Verdict = run_verdict(phases)
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": f"{name}-20261121T101500Z",
        "scenario": name,
        "scenario_file": scenario_file or f"scenarios/{name}.yaml",
        "started_at": "2026-11-21T10:15:00Z",
        "finished_at": "2026-11-21T10:16:10Z",
        "command": f"conntrack-harness run scenarios/{name}.yaml --backend netns",
        "verdict": verdict,
        "environment": _environment(),
        "phases": phases,
    }


def exhaustion_run() -> RunResult:
    """Short-lived HTTP fills a 2048-entry table; pooling and bigger/faster tables fix it."""
    return build_run(
        "conntrack-exhaustion",
        [
            PhaseModel("baseline", expect=("dns.timeout_rate >= 0.1", "conntrack.drop > 0")),
            PhaseModel(
                "pooling",
                remediations=("pooling",),
                new_conns_per_s=0.4,
                http_mode="pooled",
                seed=2,
                expect=("dns.timeout_rate <= 0.001", "conntrack.drop == 0"),
            ),
            PhaseModel(
                "sysctls",
                remediations=("conntrack-sysctls",),
                conntrack_max=65536,
                seed=3,
                expect=("dns.timeout_rate <= 0.001", "conntrack.drop == 0"),
            ),
        ],
    )


def race_run() -> RunResult:
    """An INJECTED race window drops AAAA of same-port pairs; single-request-reopen fixes it."""
    return build_run(
        "insert-race-injected",
        [
            PhaseModel(
                "baseline-race",
                race_probability=0.3,
                new_conns_per_s=5,
                seed=4,
                expect=("dns.timeout_rate >= 0.05",),
            ),
            PhaseModel(
                "single-request-reopen",
                remediations=("resolver-option",),
                race_probability=0.3,
                same_socket_pairs=False,
                new_conns_per_s=5,
                seed=5,
                expect=("dns.timeout_rate <= 0.001",),
            ),
            PhaseModel(
                "nodelocal-dns",
                remediations=("nodelocal-dns",),
                race_probability=0.3,
                same_socket_pairs=False,
                new_conns_per_s=5,
                seed=6,
                expect=("dns.timeout_rate <= 0.001",),
            ),
        ],
    )


def still_broken_run() -> RunResult:
    """A run whose remediation does not help, with two repeats of the baseline."""
    return build_run(
        "still-broken",
        [
            PhaseModel("baseline", expect=("dns.timeout_rate >= 0.1",)),
            PhaseModel("baseline", repeat_index=1, expect=("dns.timeout_rate >= 0.1",)),
            PhaseModel(
                "fqdn", remediations=("fqdn",), seed=9, expect=("dns.timeout_rate <= 0.001",)
            ),
        ],
    )


def unchecked_run() -> RunResult:
    """A full table: many timeouts, and no expectation to judge them in the baseline."""
    return build_run(
        "unchecked",
        [
            PhaseModel("baseline"),
            PhaseModel(
                "pooling",
                remediations=("pooling",),
                new_conns_per_s=0.4,
                seed=2,
                expect=("dns.timeout_rate <= 0.001",),
            ),
        ],
    )


def overload_phase() -> PhaseResult:
    """DNS servers that answer fewer queries than they receive (no conntrack trouble)."""
    return build_phase(
        PhaseModel(
            "overload",
            new_conns_per_s=5,
            dns_per_s=100,
            conntrack_max=65536,
            server_capacity_per_s=150,
            seed=7,
        )
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0] if args else ".")
    out.mkdir(parents=True, exist_ok=True)
    for run in (exhaustion_run(), race_run()):
        (out / f"{run['scenario']}.result.json").write_text(json.dumps(run, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
