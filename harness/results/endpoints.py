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
sent from then on became, per pod and second, from the client's own counts and its flow's
entry in the sample taken in that second:
- ``answered``;
- ``refused``: ECONNREFUSED, kube-proxy's reject rule answered with ICMP port unreachable;
- ``blackholed``: no answer while the client's flow was DNATed to a deleted endpoint: the
  query went to a pod that no longer exists;
- ``rejected_silently``: no answer while the flow had no entry: kube-proxy's reject rule
  dropped it at the client's node, and the kernel sent no ICMP error for it (it sends at most
  one a second to each client: ``net.ipv4.icmp_ratelimit``, 1000 ms by default);
- ``silent_other``: no answer otherwise (its flow was DNATed to a live endpoint, or no sample).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import NotRequired, TypedDict

from harness.results import lifecycle

SETTLE_S = 1.0  # from the empty EndpointSlice to the first sample that judges the window


class EndpointEvent(TypedDict):
    t_s: float  # seconds since the load started
    event: str  # scale | deleted | stopped | network-removed | started | ready | endpoints | rules
    pod: str  # the pod, or "" for endpoints/rules, or the Deployment for scale
    ip: str  # the pod's IP; endpoints/rules: the endpoint IPs, comma-separated
    replicas: NotRequired[int]  # scale: the count asked for
    # kube-proxy restart (harness.results.lifecycle): the process's PID; the Service's entries
    # in the node's table, and of those before the restart how many were still there
    pid: NotRequired[int]
    entries: NotRequired[int]
    kept: NotRequired[int]


Flow = tuple[str, int, str]  # (original source, source port, reply source = DNAT target)


class ZeroWindow(TypedDict):
    from_s: float  # the EndpointSlices listed no endpoint
    rules_s: float | None  # every node's kube-proxy rules had no endpoint for it
    judged_from_s: float  # rules_s (else from_s) + SETTLE_S
    to_s: float  # the next event began, or the load ended
    stale_entries_max: int  # sampled from judged_from_s on
    client_flows_stale_max: int  # same-port client flows among them
    samples: int
    sent: int  # same-port queries sent in the judged part's whole seconds
    answered: int
    refused: int
    blackholed: int  # silent, its flow DNATed to a deleted endpoint
    rejected_silently: int  # silent, its flow had no entry (the reject rule dropped it)
    silent_other: int
    # from the event that ended the window (to_s) to the end of the first whole second in
    # which every same-port client pod had an answer again (1 s resolution); None: one never
    # did before the load ended
    answered_again_s: float | None


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
    client_flows_stale_max: int
    sent: int
    answered: int
    refused: int
    blackholed: int
    blackholed_rate: float  # blackholed / sent
    rejected_silently: int
    silent_other: int
    # the windows' longest answered_again_s (0: no window; None: a client never recovered)
    answered_again_s_max: float | None
    settle_s: float
    source: str  # where the entries were read
    # kube-proxy restarts and Services deleted and created again (harness.results.lifecycle)
    restarts: list[lifecycle.KubeProxyRestart]
    recreates: list[lifecycle.ServiceRecreate]
    restart_entries_lost: int  # summed over the restarts
    restart_unsynced_s_max: float  # the longest stop-to-first-sync (0: no restart)
    deleted_service_entries_max: int  # over the re-creates
    recovered_s_max: float | None  # the re-creates' longest recovery (None: one never did)


def reply_sources(listing: str, service_ip: str, port: int, proto: str = "udp") -> Counter[str]:
    """``conntrack -L`` text -> {reply source: entries}, over the ``proto`` entries whose
    original destination is ``service_ip:port`` (the reply source is kube-proxy's DNAT target,
    or the ClusterIP itself when nothing DNATed it)."""
    return Counter(reply for _, _, reply in flows(listing, service_ip, port, proto))


def flows(listing: str, service_ip: str, port: int, proto: str = "udp") -> list[Flow]:
    """``conntrack -L`` text -> (source, source port, reply source) of the ``proto`` entries
    whose original destination is ``service_ip:port``."""
    out: list[Flow] = []
    for line in listing.splitlines():
        parts = line.split()
        if not parts or parts[0] != proto:
            continue
        kv = [p.split("=", 1) for p in parts if "=" in p]
        srcs = [v for k, v in kv if k == "src"]
        dsts = [v for k, v in kv if k == "dst"]
        sports = [v for k, v in kv if k == "sport"]
        dports = [v for k, v in kv if k == "dport"]
        if len(srcs) < 2 or not dsts or not dports or not sports or not sports[0].isdigit():
            continue
        if dsts[0] == service_ip and dports[0] == str(port):
            out.append((srcs[0], int(sports[0]), srcs[1]))
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
            nxt = [x["t_s"] for x in later if x["event"] in BEGINS]
            hi = min(nxt[0], load_s) if nxt else load_s
            rules = [x["t_s"] for x in later if x["event"] == "rules" and x["t_s"] <= hi]
            out.append((e["t_s"], rules[0] if rules else None, hi))
    return out


# an event's first step: the end of the zero-endpoint window before it
BEGINS = ("scale", "kube-proxy-restart", "service-delete", "service-created")


def _flow_state(sample: Sequence[Flow] | None, pod: str, sport: int, endpoints: set[str]) -> str:
    """Where a client's flow went at a sample: ``deleted`` (DNATed to a non-endpoint),
    ``endpoint``, ``none`` (no entry: a new packet meets the reject rule) or ``unknown``."""
    if sample is None:
        return "unknown"
    for src, port, reply in sample:
        if src == pod and port == sport:
            return "endpoint" if reply in endpoints else "deleted"
    return "none"


SILENT_AS = {"deleted": "blackholed", "none": "rejected_silently"}


def endpoints_result(
    *,
    service: str,
    cluster_ip: str,
    port: int,
    initial: set[str],
    events: Sequence[EndpointEvent],
    samples: Sequence[tuple[float, str, Sequence[Flow]]],
    udp_by_pod: Mapping[str, Sequence[Sequence[float]]],
    udp_ports: Mapping[str, int],
    load_s: float,
    source: str,
    dns_timeline: Sequence[Sequence[float]] = (),
) -> EndpointsResult:
    """``samples``: (t_s since the load started, node, flows); ``udp_by_pod``: each
    same-port client pod's [second, sent, answered, refused, silent] rows (seconds since the
    load started); ``udp_ports``: each pod's source port."""
    steps = endpoints_over_time(initial, events)
    per_t: dict[float, list[int]] = {}
    node_max: dict[str, int] = {}
    merged: dict[float, list[Flow]] = {}  # every node's flows at a sample time
    for t, node, fl in samples:
        eps = _at(steps, t)
        stale = sum(1 for _, _, reply in fl if reply != cluster_ip and reply not in eps)
        clients = sum(1 for src, sp, reply in fl if udp_ports.get(src) == sp and reply not in eps)
        row = per_t.setdefault(t, [0, 0, 0])
        row[0] += stale
        row[1] += len(fl)
        row[2] += clients
        node_max[node] = max(node_max.get(node, 0), stale)
        merged.setdefault(t, []).extend(fl)
    timeline = [[t, float(s), float(n)] for t, (s, n, _) in sorted(per_t.items())]
    windows: list[ZeroWindow] = []
    for lo, rules_s, hi in zero_windows(events, load_s):
        start = (rules_s if rules_s is not None else lo) + SETTLE_S
        judged = [(s, c) for t, (s, _, c) in sorted(per_t.items()) if start <= t <= hi]
        counts = dict.fromkeys(
            ("sent", "answered", "refused", "blackholed", "rejected_silently", "silent_other"), 0
        )
        for pod, rows in udp_by_pod.items():
            for r in rows:
                second = int(r[0])
                if not (math.ceil(start) <= second and second + 1 <= hi):
                    continue
                at = [t for t in merged if second <= t < second + 1]
                sample = merged[min(at)] if at else None
                state = _flow_state(sample, pod, udp_ports.get(pod, -1), _at(steps, second))
                counts["sent"] += int(r[1])
                counts["answered"] += int(r[2])
                counts["refused"] += int(r[3])
                counts[SILENT_AS.get(state, "silent_other")] += int(r[4])
        windows.append(
            ZeroWindow(
                from_s=round(lo, 3),
                rules_s=None if rules_s is None else round(rules_s, 3),
                judged_from_s=round(start, 3),
                to_s=round(hi, 3),
                stale_entries_max=max((s for s, _ in judged), default=0),
                client_flows_stale_max=max((c for _, c in judged), default=0),
                samples=len(judged),
                sent=counts["sent"],
                answered=counts["answered"],
                refused=counts["refused"],
                blackholed=counts["blackholed"],
                rejected_silently=counts["rejected_silently"],
                silent_other=counts["silent_other"],
                answered_again_s=answered_again(udp_by_pod, hi, load_s),
            )
        )

    def total(key: str) -> int:
        values: list[int] = [int(w[key]) for w in windows]  # type: ignore[literal-required]
        return sum(values)

    sent, blackholed = total("sent"), total("blackholed")
    restarts = lifecycle.restarts(events)
    recreates = lifecycle.recreates(
        events, samples, udp_ports=udp_ports, dns_timeline=dns_timeline, load_s=load_s,
        settle_s=SETTLE_S,
    )  # fmt: skip
    recovered = [c["recovered_s"] for c in recreates]
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
        client_flows_stale_max=max((w["client_flows_stale_max"] for w in windows), default=0),
        sent=sent,
        answered=total("answered"),
        refused=total("refused"),
        blackholed=blackholed,
        blackholed_rate=round(blackholed / sent, 6) if sent else 0.0,
        rejected_silently=total("rejected_silently"),
        silent_other=total("silent_other"),
        answered_again_s_max=_longest([w["answered_again_s"] for w in windows]),
        settle_s=SETTLE_S,
        source=source,
        restarts=restarts,
        recreates=recreates,
        restart_entries_lost=sum(r["entries_lost"] for r in restarts),
        restart_unsynced_s_max=max((r["unsynced_s"] or 0.0 for r in restarts), default=0.0),
        deleted_service_entries_max=max(
            (c["entries_while_deleted_max"] for c in recreates), default=0
        ),
        recovered_s_max=None if None in recovered else max(recovered or [0.0]),  # type: ignore[type-var]
    )


def answered_again(
    udp_by_pod: Mapping[str, Sequence[Sequence[float]]], after_s: float, load_s: float
) -> float | None:
    """Seconds from ``after_s`` to the end of the first whole second from it on in which
    every same-port client pod had an answer (rows: [second, sent, answered, ...]); None when
    a pod had none before the load ended, or there is no same-port client."""
    if after_s >= load_s or not udp_by_pod:
        return None
    ends: list[float] = []
    for rows in udp_by_pod.values():
        firsts = [int(r[0]) for r in rows if int(r[0]) >= math.floor(after_s) and r[2] > 0]
        if not firsts:
            return None
        ends.append(min(firsts) + 1.0)
    return round(max(0.0, max(ends) - after_s), 3)


def _longest(values: Sequence[float | None]) -> float | None:
    """The most of ``values``; None when one is None (never); 0.0 when there are none."""
    if any(v is None for v in values):
        return None
    return max((v for v in values if v is not None), default=0.0)


def describe(r: EndpointsResult) -> str:
    """One sentence for reports (pure)."""
    more = lifecycle.describe(r.get("restarts", []), r.get("recreates", []))
    return f"{_describe_windows(r)} {more}".strip()


def _describe_windows(r: EndpointsResult) -> str:
    if not r["zero_windows"]:
        return f"{r['service']} always had an endpoint; stale entries: see the timeline."
    spans = ", ".join(f"{w['from_s']:.1f}-{w['to_s']:.1f} s" for w in r["zero_windows"])
    return (
        f"{r['service']} had no endpoint during {spans}: at most {r['stale_entries_max']} "
        f"conntrack entries still DNATed to no endpoint of it (a deleted pod, or a pod of "
        f"the Service while it was deleted); the same-port client's "
        f"{r['sent']} queries then were {r['answered']} answered, {r['refused']} refused, "
        f"{r['blackholed']} blackholed (sent to a deleted pod), {r['rejected_silently']} "
        f"dropped by kube-proxy's reject rule without an ICMP error (the kernel's "
        f"icmp_ratelimit), {r['silent_other']} otherwise unanswered."
    )
