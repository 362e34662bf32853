"""Expectations such as ``dns.timeout_rate <= 0.001``: parsing and evaluation (pure)."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cthcommon.errors import BadInput

OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}

# Metric paths an expectation may name; each resolves inside a phase's result.
METRICS: frozenset[str] = frozenset(
    {
        "dns.lookups",
        "dns.timeouts",
        "dns.timeout_rate",
        "dns.failed",
        "dns.failed_rate",
        "dns.queries_sent",
        "dns.queries_unanswered",
        "dns.latency_ms.p50",
        "dns.latency_ms.p99",
        "dns.latency_ms.max",
        "dns.full_timeout_waits",
        "dns.waited",
        "dns.waited_rate",
        "dns.full_timeout_rate",
        "dns.queries_per_lookup",
        "conntrack.max",
        "conntrack.peak_count",
        "conntrack.peak_fill",
        "conntrack.drop",
        "conntrack.early_drop",
        "conntrack.insert_failed",
        "conntrack.clash_resolve",
        "conntrack.table_full_lines",
        "conntrack.dns_entries",
        "http.requests",
        "http.failures",
        "http.failure_rate",
        "http.new_connections",
        "locust.requests",
        "locust.failures",
        "locust.failure_rate",
        "locust.rps",
        "locust.new_connections",
        "locust.latency_ms.p50",
        "locust.latency_ms.p99",
        "server.received",
        "server.answered",
        "server.upstream_received",
        "node.dns_dropped",
        "node.dns_local",
        "fault.hits",
        # netns: the same-port UDP client (load.udp), over the whole phase
        "udp.sent",
        "udp.answered",
        "udp.refused",
        "udp.silent",
        # netns: endpoint events (phases[].events), over the zero-endpoint windows
        "endpoints.stale_entries_max",
        "endpoints.sent",
        "endpoints.answered",
        "endpoints.refused",
        "endpoints.blackholed",
        "endpoints.blackholed_rate",
        "endpoints.rejected_silently",
        "endpoints.client_flows_stale_max",
        # kube-proxy restarts and Services deleted and created again (phases[].events)
        "endpoints.restart_entries_lost",
        "endpoints.restart_unsynced_s_max",
        "endpoints.deleted_service_entries_max",
        "endpoints.recovered_s_max",
        # netns: the statsd sender (load.statsd), counted at the receivers; blackholed and
        # rejected over the zero-endpoint windows
        "statsd.sent",
        "statsd.delivered",
        "statsd.lost",
        "statsd.delivered_rate",
        "statsd.window_sent",
        "statsd.window_delivered",
        "statsd.blackholed",
        "statsd.blackholed_rate",
        "statsd.rejected",
        "statsd.rejected_rate",
        # netns: every node's kube-proxy over the phase (harness.results.kubeproxy)
        "kube_proxy.sync_count",
        "kube_proxy.reconcile_count",
        "kube_proxy.reconcile_max_le_s",
        "kube_proxy.reconcile_deleted_entries",
        "kube_proxy.rss_kib_max",
        # netns: harness.steady (reached is 1 or 0)
        "steady_state.reached",
        "steady_state.occupancy_vs_max",
        "steady_state.observed_vs_max",
        "steady_state.time_to_steady_s",
    }
)

_EXPR = re.compile(
    r"^\s*([a-z_][a-z0-9_.]*)\s*(<=|>=|==|!=|<|>)\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*$"
)


@dataclass(frozen=True)
class Expectation:
    metric: str
    op: str
    threshold: float

    @classmethod
    def parse(cls, text: str, *, field: str = "expect") -> Expectation:
        m = _EXPR.match(text)
        if not m:
            raise BadInput(
                "expectation must read '<metric> <op> <number>'",
                field=field,
                value=text,
                allowed="ops " + ", ".join(OPS),
            )
        metric, op, num = m.groups()
        if metric not in METRICS:
            raise BadInput("unknown metric", field=field, value=metric, allowed=sorted(METRICS))
        return cls(metric, op, float(num))

    def __str__(self) -> str:
        thr = int(self.threshold) if self.threshold.is_integer() else self.threshold
        return f"{self.metric} {self.op} {thr}"

    def observe(self, phase_result: Mapping[str, Any]) -> float | None:
        node: Any = phase_result
        for part in self.metric.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return float(node) if isinstance(node, int | float) else None

    def evaluate(self, phase_result: Mapping[str, Any]) -> tuple[bool, float | None]:
        observed = self.observe(phase_result)
        if observed is None:
            return False, None
        return OPS[self.op](observed, self.threshold), observed
