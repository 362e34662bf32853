"""Endpoint events in a phase and what they left in the nodes' conntrack tables (pure).

While a phase's load runs, the backend scales a Deployment (``phases[].events``) and samples,
once a second on every node, the UDP entries whose original destination is the Service's
ClusterIP:port, by reply source: kube-proxy's DNAT target. An entry whose target is not an
endpoint at that moment (as the EndpointSlices listed them) is **stale**: whatever its client
sends on it goes to a pod that no longer exists. kube-proxy's conntrack reconciler is meant
to delete those; v1.32-v1.36 skip a Service with no endpoints at all (kubernetes#139628), so
a client that keeps its source port stays blackholed while the Service has none.

A **zero-endpoint window** runs from the moment the EndpointSlices listed no endpoint until
the next event began (or the load ended). It is judged from ``SETTLE_S`` after every node's
kube-proxy had synced its rules for that (its reconciler runs at the end of that same sync):
the stale entries sampled from then on (their most), and what the same-port client's queries
sent from then on became: answered, refused (ECONNREFUSED: kube-proxy's reject rule
answered), or blackholed (neither).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import NotRequired, TypedDict

SETTLE_S = 1.0  # from the empty EndpointSlice to the first sample that judges the window


class EndpointEvent(TypedDict):
    t_s: float  # seconds since the load started
    event: str  # scale | deleted | stopped | network-removed | started | ready | endpoints | rules
    pod: str  # the pod, or "" for endpoints/rules, or the Deployment for scale
    ip: str  # the pod's IP; endpoints/rules: the endpoint IPs, comma-separated
    replicas: NotRequired[int]  # scale: the count asked for


class ZeroWindow(TypedDict):
    from_s: float  # the EndpointSlices listed no endpoint
    rules_s: float | None  # every node's kube-proxy rules had no endpoint for it
    judged_from_s: float  # rules_s (else from_s) + SETTLE_S
    to_s: float  # the next event began, or the load ended
    stale_entries_max: int  # sampled from judged_from_s on
    samples: int
    sent: int  # same-port queries sent in the judged part's whole seconds
    answered: int
    refused: int
    blackholed: int  # neither answered nor refused


class EndpointsResult(TypedDict):
    service: str  # namespace/name
    cluster_ip: str
    port: int
    protocol: str
    events: list[EndpointEvent]
    # [t_s, stale, entries] summed over nodes, one row per sample
    timeline: list[list[float]]
    stale_by_node_max: dict[str, int]
    zero_windows: list[ZeroWindow]
    # over every zero-endpoint window (0 when there was none)
    stale_entries_max: int
    sent: int
    answered: int
    refused: int
    blackholed: int
    blackholed_rate: float  # blackholed / sent
    settle_s: float
    source: str  # where the entries were read


def reply_sources(listing: str, service_ip: str, port: int, proto: str = "udp") -> Counter[str]:
    """``conntrack -L`` text -> {reply source: entries}, over the ``proto`` entries whose
    original destination is ``service_ip:port`` (the reply source is kube-proxy's DNAT target,
    or the ClusterIP itself when nothing DNATed it)."""
    out: Counter[str] = Counter()
    for line in listing.splitlines():
        parts = line.split()
        if not parts or parts[0] != proto:
            continue
        kv = [p.split("=", 1) for p in parts if "=" in p]
        srcs = [v for k, v in kv if k == "src"]
        dsts = [v for k, v in kv if k == "dst"]
        dports = [v for k, v in kv if k == "dport"]
        if len(srcs) < 2 or not dsts or not dports:
            continue
        if dsts[0] == service_ip and dports[0] == str(port):
            out[srcs[1]] += 1
    return out


def stale_count(sources: Mapping[str, int], endpoints: set[str], service_ip: str) -> int:
    """Entries DNATed to an address that is not an endpoint now (an entry not DNATed at all,
    reply source = the ClusterIP, is not stale: it points at no pod)."""
    return sum(n for ip, n in sources.items() if ip != service_ip and ip not in endpoints)


def endpoints_over_time(
    initial: set[str], events: Sequence[EndpointEvent]
) -> list[tuple[float, set[str]]]:
    """(from t_s, endpoints) steps: the initial set, then each ``endpoints`` event's."""
    steps = [(-math.inf, set(initial))]
    for e in events:
        if e["event"] == "endpoints":
            steps.append((e["t_s"], {ip for ip in e["ip"].split(",") if ip}))
    return steps


def _at(steps: list[tuple[float, set[str]]], t: float) -> set[str]:
    current = steps[0][1]
    for since, eps in steps:
        if since <= t:
            current = eps
    return current


def zero_windows(
    events: Sequence[EndpointEvent], load_s: float
) -> list[tuple[float, float | None, float]]:
    """(from_s, rules_s, to_s) of each span during which the EndpointSlices listed no
    endpoint; rules_s: when every node's rules said so too (None: never seen)."""
    out: list[tuple[float, float | None, float]] = []
    for i, e in enumerate(events):
        if e["event"] == "endpoints" and not e["ip"]:
            later = events[i + 1 :]
            nxt = [x["t_s"] for x in later if x["event"] == "scale"]
            hi = min(nxt[0], load_s) if nxt else load_s
            rules = [x["t_s"] for x in later if x["event"] == "rules" and x["t_s"] <= hi]
            out.append((e["t_s"], rules[0] if rules else None, hi))
    return out


def endpoints_result(
    *,
    service: str,
    cluster_ip: str,
    port: int,
    initial: set[str],
    events: Sequence[EndpointEvent],
    samples: Sequence[tuple[float, str, Mapping[str, int]]],
    udp_timeline: Sequence[Sequence[float]],
    load_s: float,
    source: str,
) -> EndpointsResult:
    """``samples``: (t_s since the load started, node, reply sources); ``udp_timeline``: the
    same-port client's [second, sent, answered, refused, silent] rows (seconds since the load
    started)."""
    steps = endpoints_over_time(initial, events)
    per_t: dict[float, list[int]] = {}
    node_max: dict[str, int] = {}
    stale_at: list[tuple[float, int]] = []
    for t, node, sources in samples:
        stale = stale_count(sources, _at(steps, t), cluster_ip)
        row = per_t.setdefault(t, [0, 0])
        row[0] += stale
        row[1] += sum(sources.values())
        node_max[node] = max(node_max.get(node, 0), stale)
    timeline = [[t, float(s), float(n)] for t, (s, n) in sorted(per_t.items())]
    stale_at = [(t, s) for t, (s, _) in sorted(per_t.items())]
    windows: list[ZeroWindow] = []
    for lo, rules_s, hi in zero_windows(events, load_s):
        start = (rules_s if rules_s is not None else lo) + SETTLE_S
        judged = [s for t, s in stale_at if start <= t <= hi]
        rows = [r for r in udp_timeline if math.ceil(start) <= r[0] and r[0] + 1 <= hi]
        sent, answered, refused, silent = (int(sum(r[i] for r in rows)) for i in range(1, 5))
        windows.append(
            ZeroWindow(
                from_s=round(lo, 3),
                rules_s=None if rules_s is None else round(rules_s, 3),
                judged_from_s=round(start, 3),
                to_s=round(hi, 3),
                stale_entries_max=max(judged, default=0),
                samples=len(judged),
                sent=sent,
                answered=answered,
                refused=refused,
                blackholed=silent,
            )
        )
    sent = sum(w["sent"] for w in windows)
    blackholed = sum(w["blackholed"] for w in windows)
    return EndpointsResult(
        service=service,
        cluster_ip=cluster_ip,
        port=port,
        protocol="UDP",
        events=list(events),
        timeline=timeline,
        stale_by_node_max=node_max,
        zero_windows=windows,
        stale_entries_max=max((w["stale_entries_max"] for w in windows), default=0),
        sent=sent,
        answered=sum(w["answered"] for w in windows),
        refused=sum(w["refused"] for w in windows),
        blackholed=blackholed,
        blackholed_rate=round(blackholed / sent, 6) if sent else 0.0,
        settle_s=SETTLE_S,
        source=source,
    )


def describe(r: EndpointsResult) -> str:
    """One sentence for reports (pure)."""
    if not r["zero_windows"]:
        return f"{r['service']} always had an endpoint; stale entries: see the timeline."
    spans = ", ".join(f"{w['from_s']:.1f}-{w['to_s']:.1f} s" for w in r["zero_windows"])
    return (
        f"{r['service']} had no endpoint during {spans}: at most {r['stale_entries_max']} "
        f"conntrack entries still DNATed to a deleted pod; the same-port client's "
        f"{r['sent']} queries then were {r['answered']} answered, {r['refused']} refused, "
        f"{r['blackholed']} blackholed."
    )
