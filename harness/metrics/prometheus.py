"""Prometheus export (node-exporter's conntrack names plus the harness's DNS metrics).

Two things live here:

* :class:`HarnessMetrics`: a private ``CollectorRegistry`` holding
  ``node_nf_conntrack_entries``, ``node_nf_conntrack_entries_limit``,
  ``node_nf_conntrack_stat_*`` (labelled by ``node``, as node-exporter names them) and the
  harness's ``conntrack_harness_dns_*`` lookup/timeout metrics (labelled by ``phase``).
  Write it as a node-exporter textfile (:meth:`HarnessMetrics.write_textfile`) or serve it
  during a run (:meth:`HarnessMetrics.serve`, bound to 127.0.0.1 only).
* seed 000's alert, ``ConntrackTableNearFull``, is evaluated over a phase's sampled series in
  :mod:`harness.judge.alerts` (pure), where its ``for: 5m`` is scaled to the phase.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    start_http_server,
    write_to_textfile,
)
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

from cthcommon.errors import BadInput, UnsafeRequest
from harness.judge.alerts import evaluate_near_full
from harness.results.schema import AlertResult, PhaseResult, RunResult

# The per-CPU counters of /proc/net/stat/nf_conntrack that node-exporter exports.
STAT_COUNTERS = (
    "found",
    "invalid",
    "ignore",
    "insert",
    "insert_failed",
    "drop",
    "early_drop",
    "search_restart",
    "clash_resolve",
)
LOOKUP_BUCKETS_S = (0.01, 0.1, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)


LATENCY_METRIC = "conntrack_harness_dns_lookup_duration_seconds"


class PhaseLatency(Collector):
    """Lookup latency per phase as a Prometheus histogram: fed lookup by lookup during a run
    (:meth:`observe`, buckets ``LOOKUP_BUCKETS_S``) or from a finished phase's ``latency_hist``
    (:meth:`set_phase`, the result's own edges). The result's buckets are left-closed
    ([a, b)); a latency exactly on an edge is counted one bucket up from Prometheus' ``le``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # phase -> (finite upper edges, counts per bucket incl. overflow, sum or None)
        self._phases: dict[str, tuple[list[float], list[int], float | None]] = {}

    def observe(self, phase: str, seconds: float) -> None:
        edges = [e for e in LOOKUP_BUCKETS_S if math.isfinite(e)]
        with self._lock:
            _, counts, total = self._phases.get(phase, (edges, [0] * (len(edges) + 1), 0.0))
            i = next((i for i, e in enumerate(edges) if seconds <= e), len(edges))
            counts[i] += 1
            self._phases[phase] = (edges, counts, (total or 0.0) + seconds)

    def set_phase(
        self, phase: str, edges: Sequence[float], counts: Sequence[int], sum_s: float | None
    ) -> None:
        if len(counts) != len(edges) + 1:
            raise BadInput(
                "a latency histogram has one count more than edges",
                field="latency_hist",
                value=(list(edges), list(counts)),
            )
        with self._lock:
            self._phases[phase] = (list(edges), list(counts), sum_s)

    def collect(self) -> Iterable[HistogramMetricFamily]:
        fam = HistogramMetricFamily(
            LATENCY_METRIC, "Lookup latency as the application saw it.", labels=["phase"]
        )
        with self._lock:
            phases = dict(self._phases)
        for phase, (edges, counts, total) in sorted(phases.items()):
            cumulative, buckets = 0, []
            for edge, n in zip([*edges, math.inf], counts, strict=True):
                cumulative += n
                buckets.append(("+Inf" if math.isinf(edge) else repr(float(edge)), cumulative))
            fam.add_metric([phase], buckets, total)
        yield fam


@dataclass
class _Server:
    httpd: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.httpd.server_port)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class HarnessMetrics:
    """A private registry with the conntrack and DNS metrics of one run."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.entries = Gauge(
            "node_nf_conntrack_entries",
            "Number of currently allocated flow entries for connection tracking.",
            ["node"],
            registry=r,
        )
        self.limit = Gauge(
            "node_nf_conntrack_entries_limit",
            "Maximum size of connection tracking table.",
            ["node"],
            registry=r,
        )
        self.stat = {
            name: Gauge(
                f"node_nf_conntrack_stat_{name}",
                f"conntrack -S '{name}', summed over CPUs.",
                ["node"],
                registry=r,
            )
            for name in STAT_COUNTERS
        }
        self.lookups = Counter(
            "conntrack_harness_dns_lookups",
            "DNS lookups the harness made.",
            ["phase", "resolver"],
            registry=r,
        )
        self.timeouts = Counter(
            "conntrack_harness_dns_timeouts",
            "Lookups that waited at least one full resolver timeout.",
            ["phase", "resolver"],
            registry=r,
        )
        self.failed = Counter(
            "conntrack_harness_dns_failed",
            "Lookups that ended with no answer.",
            ["phase", "resolver"],
            registry=r,
        )
        self.latency = PhaseLatency()
        r.register(self.latency)
        # node-exporter's gauges above hold the latest sample; these keep every phase's
        per_phase = ["node", "phase"]
        self.phase_entries = Gauge(
            "conntrack_harness_conntrack_entries",
            "Conntrack entries at the end of the phase.",
            per_phase,
            registry=r,
        )
        self.phase_peak = Gauge(
            "conntrack_harness_conntrack_peak_entries",
            "Most conntrack entries sampled during the phase.",
            per_phase,
            registry=r,
        )
        self.phase_limit = Gauge(
            "conntrack_harness_conntrack_entries_limit",
            "nf_conntrack_max in force during the phase.",
            per_phase,
            registry=r,
        )
        self.phase_stat = {
            name: Gauge(
                f"conntrack_harness_conntrack_stat_{name}",
                f"conntrack -S '{name}' counted during the phase, summed over CPUs.",
                per_phase,
                registry=r,
            )
            for name in STAT_COUNTERS
        }
        self.alert = Gauge(
            "conntrack_harness_alert_fired",
            "1 when the alert rule fired in the phase (for scaled to the phase).",
            ["alertname", "phase"],
            registry=r,
        )
        self._servers: list[_Server] = []

    # --- feeding -------------------------------------------------------------------
    def observe_conntrack(
        self, node: str, count: int, limit: int, stats: Mapping[str, int] | None = None
    ) -> None:
        """One sample of a node's table: count, max and the summed ``conntrack -S`` counters."""
        self.entries.labels(node=node).set(count)
        self.limit.labels(node=node).set(limit)
        for name, value in (stats or {}).items():
            if name in self.stat:
                self.stat[name].labels(node=node).set(value)

    def observe_lookup(
        self, phase: str, resolver: str, seconds: float, *, timed_out: bool, failed: bool
    ) -> None:
        """One finished lookup."""
        self.lookups.labels(phase=phase, resolver=resolver).inc()
        if timed_out:
            self.timeouts.labels(phase=phase, resolver=resolver).inc()
        if failed:
            self.failed.labels(phase=phase, resolver=resolver).inc()
        self.latency.observe(phase, seconds)

    def load_result(self, result: RunResult) -> None:
        """Fill the registry from a finished run: every phase's DNS totals, latency
        histogram and per-node conntrack values (node-exporter's gauges keep the last)."""
        for phase in result["phases"]:
            label = _phase_label(phase)
            dns = phase["dns"]
            self.lookups.labels(phase=label, resolver=dns["resolver"]).inc(dns["lookups"])
            self.timeouts.labels(phase=label, resolver=dns["resolver"]).inc(dns["timeouts"])
            self.failed.labels(phase=label, resolver=dns["resolver"]).inc(dns["failed"])
            hist = dns.get("latency_hist")
            if hist:
                self.latency.set_phase(
                    label, hist["edges_s"], hist["counts"], dns.get("latency_sum_s")
                )
            for node in phase["conntrack"]["nodes"]:
                last = node["timeline"][-1][1] if node["timeline"] else node["peak_count"]
                stats = {
                    k: int(v) for k, v in node.items() if k in STAT_COUNTERS and isinstance(v, int)
                }
                self.observe_conntrack(node["node"], int(last), node["max"], stats)
                where = {"node": node["node"], "phase": label}
                self.phase_entries.labels(**where).set(last)
                self.phase_peak.labels(**where).set(node["peak_count"])
                self.phase_limit.labels(**where).set(node["max"])
                for name, value in stats.items():
                    self.phase_stat[name].labels(**where).set(value)
            for name, alert in phase.get("alerts", {}).items():
                self.alert.labels(alertname=name, phase=label).set(1 if alert["fired"] else 0)

    # --- output --------------------------------------------------------------------
    def text(self) -> str:
        """The exposition text, as a scrape would see it."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry).decode()

    def write_textfile(self, path: str | Path) -> Path:
        """Write atomically for node-exporter's textfile collector (``*.prom``)."""
        p = Path(path)
        if p.suffix != ".prom":
            raise BadInput("node-exporter only reads *.prom files", field="textfile", value=str(p))
        write_to_textfile(str(p), self.registry)
        return p

    def serve(self, port: int = 0, addr: str = "127.0.0.1") -> int:
        """Serve ``/metrics`` on loopback during a run; returns the port (0 picks a free one)."""
        if addr not in ("127.0.0.1", "::1", "localhost"):
            raise UnsafeRequest(
                "the metrics endpoint binds to loopback only",
                field="addr",
                value=addr,
                allowed="127.0.0.1",
            )
        httpd, thread = start_http_server(port, addr=addr, registry=self.registry)
        server = _Server(httpd, thread)
        self._servers.append(server)
        return server.port

    def close(self) -> None:
        """Stop every endpoint this object started."""
        while self._servers:
            self._servers.pop().close()

    def __enter__(self) -> HarnessMetrics:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _phase_label(phase: PhaseResult) -> str:
    return (
        phase["name"] if phase["repeat_index"] == 0 else f"{phase['name']}#{phase['repeat_index']}"
    )


def alerts_by_phase(result: RunResult) -> Iterable[tuple[str, AlertResult]]:
    """``(phase label, ConntrackTableNearFull evaluation)`` for each phase of a run."""
    for phase in result["phases"]:
        yield _phase_label(phase), evaluate_near_full(phase)
