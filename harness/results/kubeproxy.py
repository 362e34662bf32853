"""kube-proxy's cost in a phase: its rule syncs, its conntrack reconciles and its memory,
next to the node's conntrack count (pure).

kube-proxy's conntrack reconciler runs at the end of every rule sync and walks the whole
table (kubernetes#129982, #135323, #135511: its cost grows with the table). It logs each
run's duration ("Finished reconciling conntrack entries", ``took``) only at ``-v=4``, a
verbosity the harness does not run it at (its log would flood); the same durations are in
its metrics, as histograms (exponential buckets from 1 ms): ``SYNC`` for each rule sync and
``RECONCILE`` for each reconcile, plus ``DELETED`` (entries the reconciler deleted). A
histogram gives each duration's bucket, not the duration: the median and the maximum are the
upper bounds of the buckets they fell in (``p50_le_s``, ``max_le_s``), and ``mean_s`` is
exact (sum / count).

The phase's figures are the difference between a scrape before the load and one after it
(a kube-proxy restarted in between, a new PID or fewer observations than before, started
its counts again: the after scrape alone). Its
RSS (``VmRSS`` of /proc/PID/status) and the node's ``nf_conntrack_count`` are sampled
together once a second.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NotRequired, TypedDict

from prometheus_client.parser import text_string_to_metric_families

SYNC = "kubeproxy_sync_proxy_rules_duration_seconds"
RECONCILE = "kubeproxy_conntrack_reconciler_sync_duration_seconds"
DELETED = "kubeproxy_conntrack_reconciler_deleted_entries_total"
SOURCE = (
    "kube-proxy's /metrics (127.0.0.1:10249 in its node's namespace) scraped before and after "
    "the load; VmRSS from /proc/PID/status and the node's nf_conntrack_count, once a second"
)


@dataclass
class Histogram:
    """One histogram summed over its label sets: cumulative bucket counts by upper bound."""

    buckets: dict[float, float] = field(default_factory=dict)
    count: float = 0.0
    total: float = 0.0

    def minus(self, before: Histogram | None) -> Histogram:
        """The observations since ``before`` (all of them when the process restarted)."""
        if before is None or self.count < before.count:
            return self
        return Histogram(
            {le: n - before.buckets.get(le, 0.0) for le, n in self.buckets.items()},
            self.count - before.count,
            self.total - before.total,
        )


class Durations(TypedDict):
    count: int
    sum_s: float
    mean_s: float | None
    p50_le_s: float | None  # the upper bound of the median's bucket (None: +Inf or none)
    max_le_s: float | None  # the upper bound of the highest bucket that has one


class KubeProxyNode(TypedDict):
    pid: int | None
    sync: Durations | None  # None: not exposed
    reconcile: Durations | None
    reconcile_deleted_entries: int | None
    rss_kib_max: int | None
    rss_kib_first: int | None
    conntrack_count_max: int | None
    conntrack_count_at_rss_max: int | None
    samples: int
    # [t_s, VmRSS KiB, nf_conntrack_count] on the load's clock (samples with both)
    timeline: list[list[float]]


class KubeProxyPhase(TypedDict):
    nodes: dict[str, KubeProxyNode]
    # over the nodes
    sync_count: int
    reconcile_count: NotRequired[int]
    reconcile_max_le_s: NotRequired[float | None]
    reconcile_deleted_entries: NotRequired[int]
    rss_kib_max: NotRequired[int]
    conntrack_count_max: NotRequired[int]
    source: str


def histograms(text: str) -> tuple[dict[str, Histogram], dict[str, float]]:
    """Prometheus text -> (histogram families by name, counters by sample name), each summed
    over its label sets."""
    hists: dict[str, Histogram] = {}
    counters: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if fam.type == "histogram":
                h = hists.setdefault(fam.name, Histogram())
                if s.name.endswith("_bucket"):
                    le = float(s.labels["le"])
                    h.buckets[le] = h.buckets.get(le, 0.0) + s.value
                elif s.name.endswith("_count"):
                    h.count += s.value
                elif s.name.endswith("_sum"):
                    h.total += s.value
            elif fam.type in ("counter", "unknown") and s.name.endswith("_total"):
                counters[s.name] = counters.get(s.name, 0.0) + s.value
    return hists, counters


def durations(h: Histogram) -> Durations:
    n = round(h.count)
    p50 = top = None
    if n:
        for le in sorted(h.buckets):
            if p50 is None and h.buckets[le] >= n / 2:
                p50 = le
            if h.buckets[le] >= n:
                top = le
                break
    return Durations(
        count=n,
        sum_s=round(h.total, 6),
        mean_s=round(h.total / n, 6) if n else None,
        p50_le_s=None if p50 is None or math.isinf(p50) else p50,
        max_le_s=None if top is None or math.isinf(top) else top,
    )


def vmrss_kib(status: str) -> int | None:
    """``VmRSS`` (KiB) from /proc/PID/status text, None when absent (a zombie)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            parts = line.split()
            return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    return None


@dataclass
class NodeReadings:
    """What the backend read for one node's kube-proxy in a phase."""

    pid: int | None = None  # the kube-proxy running at the last reading
    before: str | None = None  # /metrics text (None: the scrape failed)
    after: str | None = None
    pid_before: int | None = None  # the kube-proxy that served ``before``
    samples: list[tuple[float, int | None, int | None]] = field(default_factory=list)


def node_result(r: NodeReadings) -> tuple[KubeProxyNode, dict[str, str]]:
    """One node's figures, and what it did not expose: field -> why."""
    missing: dict[str, str] = {}
    sync = reconcile = None
    deleted = None
    if r.after is None:
        missing["kube_proxy.metrics"] = "kube-proxy's /metrics could not be read after the load"
    else:
        h1, c1 = histograms(r.after)
        # a kube-proxy restarted during the phase started its counts again: all are new
        restarted = r.pid_before is not None and r.pid_before != r.pid
        h0, c0 = histograms(r.before) if r.before is not None and not restarted else ({}, {})
        for name, key in ((SYNC, "sync"), (RECONCILE, "reconcile")):
            if name in h1:
                d = durations(h1[name].minus(h0.get(name)))
                if key == "sync":
                    sync = d
                else:
                    reconcile = d
            else:
                missing[f"kube_proxy.{key}"] = f"kube-proxy's /metrics has no {name}"
        if DELETED in c1:
            d1, d0 = c1[DELETED], c0.get(DELETED, 0.0)
            deleted = int(d1 - d0) if d1 >= d0 else int(d1)
        else:
            missing["kube_proxy.reconcile_deleted_entries"] = (
                f"kube-proxy's /metrics has no {DELETED}"
            )
    rss = [(s[1], s[2]) for s in r.samples if s[1] is not None]
    counts = [s[2] for s in r.samples if s[2] is not None]
    peak = max(rss, key=lambda x: x[0]) if rss else None
    if not rss:
        missing["kube_proxy.rss"] = "no VmRSS sample of kube-proxy"
    return (
        KubeProxyNode(
            pid=r.pid,
            sync=sync,
            reconcile=reconcile,
            reconcile_deleted_entries=deleted,
            rss_kib_max=peak[0] if peak else None,
            rss_kib_first=rss[0][0] if rss else None,
            conntrack_count_max=max(counts) if counts else None,
            conntrack_count_at_rss_max=peak[1] if peak else None,
            samples=len(r.samples),
            timeline=[
                [round(t, 3), float(k), float(c)]
                for t, k, c in r.samples
                if k is not None and c is not None
            ],
        ),
        missing,
    )


def kube_proxy_result(
    readings: Mapping[str, NodeReadings],
) -> tuple[KubeProxyPhase, dict[str, str]]:
    """Every node's figures and their totals, and what went unmeasured (field -> why)."""
    nodes: dict[str, KubeProxyNode] = {}
    missing: dict[str, str] = {}
    for name, r in readings.items():
        nodes[name], m = node_result(r)
        for k, why in m.items():
            missing.setdefault(k, f"{name}: {why}")
    out = KubeProxyPhase(
        nodes=nodes,
        sync_count=sum(n["sync"]["count"] for n in nodes.values() if n["sync"]),
        source=SOURCE,
    )
    recs = [n["reconcile"] for n in nodes.values() if n["reconcile"] is not None]
    if recs:
        out["reconcile_count"] = sum(d["count"] for d in recs)
        tops = [d["max_le_s"] for d in recs if d["max_le_s"] is not None]
        out["reconcile_max_le_s"] = max(tops) if tops else None
    deleted = [n["reconcile_deleted_entries"] for n in nodes.values()]
    if any(d is not None for d in deleted):
        out["reconcile_deleted_entries"] = sum(d for d in deleted if d is not None)
    rss = [n["rss_kib_max"] for n in nodes.values() if n["rss_kib_max"] is not None]
    if rss:
        out["rss_kib_max"] = max(rss)
    counts = [n["conntrack_count_max"] for n in nodes.values()]
    if any(c is not None for c in counts):
        out["conntrack_count_max"] = max(c for c in counts if c is not None)
    return out, missing


def describe(r: KubeProxyPhase) -> str:
    """One sentence for reports (pure)."""
    parts = []
    for name, n in r["nodes"].items():
        rec = n["reconcile"]
        text = f"{name}: {n['sync']['count'] if n['sync'] else '?'} rule syncs"
        if rec is not None and rec["count"]:
            top = f"<= {rec['max_le_s']:g} s" if rec["max_le_s"] is not None else "past the buckets"
            text += f", {rec['count']} conntrack reconciles (mean {rec['mean_s']:.4f} s, max {top})"
        if n["rss_kib_max"] is not None:
            text += f", RSS up to {n['rss_kib_max'] / 1024:.1f} MiB"
        if n["conntrack_count_at_rss_max"] is not None:
            text += f" with {n['conntrack_count_at_rss_max']} conntrack entries"
        parts.append(text)
    return "kube-proxy: " + "; ".join(parts) + "."
