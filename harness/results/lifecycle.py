"""A kube-proxy restart and a Service deleted and created again, from a phase's events (pure).

Each event's steps are on the load's clock (:mod:`harness.backends.netns.events`):
- restart: ``kube-proxy-restart`` (the Service's entries in the node's table, before),
  ``kube-proxy-stopped`` (SIGTERM by PID; entries after the exit), ``kube-proxy-started``,
  ``kube-proxy-synced`` (kube-proxy's own ``kubeproxy_sync_proxy_rules_last_timestamp_seconds``
  after the start: its first rules sync, and so its conntrack reconcile; entries then, and how
  many of those before it were still there);
- re-create: ``service-delete``, ``service-deleted`` (its ClusterIP), ``endpoints`` (none),
  ``rules`` (no node's rules name the ClusterIP), ``service-created`` (the ClusterIP the
  apiserver gave), ``endpoints`` and ``rules`` back.

While a Service does not exist kube-proxy knows nothing of it, so an entry still DNATed for its
ClusterIP is one its reconciler left (kubernetes#141371): counted from the samples taken from
``settle_s`` after every node's rules dropped it until it was created again.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

Event = Mapping[str, Any]  # harness.results.endpoints.EndpointEvent
Flow = tuple[str, int, str]  # (source, source port, reply source)


class KubeProxyRestart(TypedDict):
    node: str
    stopped_s: float | None  # the old process had exited
    started_s: float | None
    synced_s: float | None  # the new process's first rules sync
    unsynced_s: float | None  # from the stop to that sync
    entries_before: int  # the Service's entries in the node's table before the stop
    entries_after: int  # ... after the first sync
    entries_kept: int  # of those before, the same flows after
    entries_lost: int  # entries_before - entries_kept


class ServiceRecreate(TypedDict):
    service: str
    deleted_s: float
    cluster_ip_before: str
    cluster_ip_after: str  # "" when it was not created again
    same_cluster_ip: bool
    rules_gone_s: float | None  # no node's rules named the ClusterIP
    created_s: float | None
    rules_back_s: float | None  # every node's rules named it again, to its endpoints
    entries_while_deleted_max: int  # entries still DNATed for it (summed over nodes)
    client_flows_while_deleted_max: int  # the same-port clients' among them
    lookups_while_deleted: int  # the DNS load's lookups started in those whole seconds
    timeouts_while_deleted: int
    # from the create to the end of the first whole second after it in which the DNS load's
    # lookups all got an answer (None: never, before the load ended)
    recovered_s: float | None


def _first(events: Sequence[Event], kind: str, after: float) -> Event | None:
    return next((e for e in events if e["event"] == kind and e["t_s"] >= after), None)


def restarts(events: Sequence[Event]) -> list[KubeProxyRestart]:
    out: list[KubeProxyRestart] = []
    for e in events:
        if e["event"] != "kube-proxy-restart":
            continue
        t, node = e["t_s"], e["pod"]
        same = [x for x in events if x["pod"] == node and x["t_s"] >= t]
        stopped = _first(same, "kube-proxy-stopped", t)
        started = _first(same, "kube-proxy-started", t)
        synced = _first(same, "kube-proxy-synced", t)
        before = int(e.get("entries", 0))
        kept = int(synced.get("kept", 0)) if synced else 0
        out.append(
            KubeProxyRestart(
                node=node,
                stopped_s=stopped["t_s"] if stopped else None,
                started_s=started["t_s"] if started else None,
                synced_s=synced["t_s"] if synced else None,
                unsynced_s=round(synced["t_s"] - stopped["t_s"], 3) if synced and stopped else None,
                entries_before=before,
                entries_after=int(synced.get("entries", 0)) if synced else 0,
                entries_kept=kept,
                entries_lost=before - kept,
            )
        )
    return out


def recreates(
    events: Sequence[Event],
    samples: Sequence[tuple[float, str, Sequence[Flow]]],
    *,
    udp_ports: Mapping[str, int],
    dns_timeline: Sequence[Sequence[float]],
    load_s: float,
    settle_s: float,
) -> list[ServiceRecreate]:
    """``samples``: (t_s, node, the ClusterIP's flows); ``dns_timeline``: the DNS load's
    ``[second, lookups, timeouts]`` rows."""
    out: list[ServiceRecreate] = []
    for e in events:
        if e["event"] != "service-deleted":
            continue
        t = e["t_s"]
        rules_gone = _first(events, "rules", t)
        created = _first(events, "service-created", t)
        back = _first(events, "rules", created["t_s"]) if created else None
        hi = created["t_s"] if created else load_s
        lo = (rules_gone["t_s"] if rules_gone else t) + settle_s
        per_t: dict[float, list[int]] = {}
        for ts, _, fl in samples:
            if lo <= ts <= hi:
                row = per_t.setdefault(ts, [0, 0])
                dnat = [(src, sp) for src, sp, reply in fl if reply != e["ip"]]
                row[0] += len(dnat)
                row[1] += sum(1 for src, sp in dnat if udp_ports.get(src) == sp)
        rows = [r for r in dns_timeline if math.floor(t) <= r[0] and r[0] + 1 <= hi]
        recovered: float | None = None
        if created is not None:
            for r in sorted(dns_timeline, key=lambda r: r[0]):
                if r[0] >= created["t_s"] and r[0] + 1 <= load_s and r[1] > 0 and r[2] == 0:
                    recovered = round(r[0] + 1 - created["t_s"], 3)
                    break
        out.append(
            ServiceRecreate(
                service=e["pod"],
                deleted_s=t,
                cluster_ip_before=e["ip"],
                cluster_ip_after=created["ip"] if created else "",
                same_cluster_ip=created is not None and created["ip"] == e["ip"],
                rules_gone_s=rules_gone["t_s"] if rules_gone else None,
                created_s=created["t_s"] if created else None,
                rules_back_s=back["t_s"] if back else None,
                entries_while_deleted_max=max((r[0] for r in per_t.values()), default=0),
                client_flows_while_deleted_max=max((r[1] for r in per_t.values()), default=0),
                lookups_while_deleted=int(sum(r[1] for r in rows)),
                timeouts_while_deleted=int(sum(r[2] for r in rows)),
                recovered_s=recovered,
            )
        )
    return out


def describe(rs: Sequence[KubeProxyRestart], cs: Sequence[ServiceRecreate]) -> str:
    """Sentences for reports (pure); "" without either event."""
    out: list[str] = []
    for r in rs:
        down = "never synced again" if r["unsynced_s"] is None else f"{r['unsynced_s']:.1f} s"
        out.append(
            f"kube-proxy on {r['node']} restarted at {r['stopped_s'] or 0:.1f} s (stop to first "
            f"rules sync: {down}): {r['entries_kept']} of the Service's {r['entries_before']} "
            f"entries on the node were kept, {r['entries_lost']} gone."
        )
    for c in cs:
        ip = "the same ClusterIP" if c["same_cluster_ip"] else f"ClusterIP {c['cluster_ip_after']}"
        rec = "never" if c["recovered_s"] is None else f"{c['recovered_s']:.1f} s after it"
        out.append(
            f"{c['service']} deleted at {c['deleted_s']:.1f} s: at most "
            f"{c['entries_while_deleted_max']} entries still DNATed for its ClusterIP while it did "
            f"not exist ({c['client_flows_while_deleted_max']} the same-port clients'), "
            f"{c['timeouts_while_deleted']} of {c['lookups_while_deleted']} lookups timed out; "
            f"created again ({ip}) at {c['created_s'] or 0:.1f} s, lookups all answered {rec}."
        )
    return " ".join(out)
