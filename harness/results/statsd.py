"""The one-way statsd-like sender's delivery, counted at the receivers (pure).

The sender (:mod:`loadgen.udp.statsd`) only knows what it sent. Where each datagram went is
read from nft counters the netns backend keeps (``harness.backends.netns.topology``),
sampled once a second (``harness.backends.netns.statsd``):
- **delivered**: ``statsd_rx`` in each CoreDNS pod's namespace, the receivers (the pods'
  namespaces outlive a scale-down, so a deleted pod's count stays readable);
- on every node: ``statsd_svc`` (sent to the ClusterIP by the node's pods), ``statsd_in``
  (entering the node), ``statsd_fwd`` and ``statsd_local`` (routed on, or to the node itself,
  before any filter) and ``statsd_out`` (leaving it). ``in - fwd - local`` died in routing:
  **blackholed**, the blackhole route a deleted pod's address has on its node (a routed CNI's
  DEL), reached through a conntrack entry still DNATed to that pod; ``fwd - out`` was dropped
  while forwarded: **rejected**, kube-proxy's reject rule for a Service with no endpoint
  (which also drops INVALID packets: none are sent here).

Over each zero-endpoint window's judged part (:mod:`harness.results.endpoints`), the
counters' growth between the first and the last sample inside it says where the datagrams
sent then went.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from loadgen.udp.statsd import StatsdResult

RECEIVER = (
    "nft counter in each CoreDNS pod's network namespace (input hook): UDP datagrams to "
    "port 53 shorter than a DNS header, i.e. the statsd sender's; CoreDNS drops them "
    "unanswered, and the DNS counters leave them out"
)
NODE_COUNTERS = ("statsd_svc", "statsd_in", "statsd_fwd", "statsd_local", "statsd_out")

Counters = Mapping[str, int]
# (t_s since the load began, node -> its counters, receiver pod -> statsd_rx)
Sample = tuple[float, Mapping[str, Counters], Mapping[str, int]]


class StatsdNode(TypedDict):
    sent: int  # to the ClusterIP, by the node's pods
    entered: int
    forwarded: int
    local: int
    left: int
    blackholed: int  # entered - forwarded - local: died in routing
    rejected: int  # forwarded - left: dropped while forwarded


class StatsdWindow(TypedDict):
    from_s: float  # the first sample inside the window's judged part
    to_s: float  # the last
    sent: int  # to the ClusterIP, counted on the nodes
    delivered: int
    blackholed: int
    rejected: int
    unaccounted: int  # sent - delivered - blackholed - rejected (in flight at the edges)


class StatsdPhase(TypedDict):
    receiver: str
    target: str
    port: int
    payload: str
    rate_per_pod: float
    pods: int
    source_ports: dict[str, int]
    sent: int  # by the sender
    send_errors: int
    sent_seen_by_nodes: int  # statsd_svc over the phase (cross-check of ``sent``)
    delivered: int  # summed over the receivers
    lost: int  # sent - delivered
    delivered_rate: float
    by_receiver: dict[str, int]
    by_node: dict[str, StatsdNode]
    zero_windows: list[StatsdWindow]
    # over every zero-endpoint window (0 when there was none)
    window_sent: int
    window_delivered: int
    blackholed: int
    rejected: int
    blackholed_rate: float  # blackholed / window_sent
    rejected_rate: float
    # [t_s, sent, delivered, blackholed, rejected] between one sample and the next
    timeline: list[list[float]]
    source: str


def node_flow(c: Counters) -> StatsdNode:
    """One node's counters (a difference of two readings) -> where its datagrams went."""
    g = {k: int(c.get(k, 0)) for k in NODE_COUNTERS}
    return StatsdNode(
        sent=g["statsd_svc"],
        entered=g["statsd_in"],
        forwarded=g["statsd_fwd"],
        local=g["statsd_local"],
        left=g["statsd_out"],
        blackholed=max(0, g["statsd_in"] - g["statsd_fwd"] - g["statsd_local"]),
        rejected=max(0, g["statsd_fwd"] - g["statsd_out"]),
    )


def _between(a: Sample, b: Sample) -> tuple[dict[str, StatsdNode], dict[str, int]]:
    nodes = {
        name: node_flow({k: b[1][name].get(k, 0) - a[1].get(name, {}).get(k, 0) for k in c})
        for name, c in b[1].items()
    }
    rx = {pod: n - a[2].get(pod, 0) for pod, n in b[2].items()}
    return nodes, rx


def _sums(nodes: Mapping[str, StatsdNode], rx: Mapping[str, int]) -> tuple[int, ...]:
    return (
        sum(n["sent"] for n in nodes.values()),
        sum(rx.values()),
        sum(n["blackholed"] for n in nodes.values()),
        sum(n["rejected"] for n in nodes.values()),
    )


def statsd_result(
    sender: StatsdResult,
    samples: Sequence[Sample],
    windows: Sequence[tuple[float, float]],
    source: str,
) -> StatsdPhase:
    """``sender``: the worker's ``statsd`` output; ``samples`` in time order, the first taken
    before the load and the last after it; ``windows``: each zero-endpoint window's judged
    part, (from_s, to_s) on the load's clock."""
    sent = sender["sent"]
    if len(samples) >= 2:
        by_node, by_rx = _between(samples[0], samples[-1])
    else:
        by_node, by_rx = {}, {}
    seen, delivered, _, _ = _sums(by_node, by_rx)
    timeline = []
    for a, b in pairwise(samples):
        s, d, bh, rj = _sums(*_between(a, b))
        timeline.append([round(b[0], 3), float(s), float(d), float(bh), float(rj)])
    out_windows: list[StatsdWindow] = []
    for lo, hi in windows:
        inside = [s for s in samples if lo <= s[0] <= hi]
        if len(inside) < 2:
            w_sent = w_del = w_bh = w_rj = 0
            first = last = lo
        else:
            w_sent, w_del, w_bh, w_rj = _sums(*_between(inside[0], inside[-1]))
            first, last = inside[0][0], inside[-1][0]
        out_windows.append(
            StatsdWindow(
                from_s=round(first, 3),
                to_s=round(last, 3),
                sent=w_sent,
                delivered=w_del,
                blackholed=w_bh,
                rejected=w_rj,
                unaccounted=w_sent - w_del - w_bh - w_rj,
            )
        )
    w_total = sum(w["sent"] for w in out_windows)
    blackholed = sum(w["blackholed"] for w in out_windows)
    rejected = sum(w["rejected"] for w in out_windows)
    return StatsdPhase(
        receiver=RECEIVER,
        target=sender["target"],
        port=sender["port"],
        payload=sender["payload"],
        rate_per_pod=sender["rate_per_pod"],
        pods=sender["pods"],
        source_ports=dict(sender["source_ports"]),
        sent=sent,
        send_errors=sender["send_errors"],
        sent_seen_by_nodes=seen,
        delivered=delivered,
        lost=sent - delivered,
        delivered_rate=round(delivered / sent, 6) if sent else 0.0,
        by_receiver=dict(by_rx),
        by_node=dict(by_node),
        zero_windows=out_windows,
        window_sent=w_total,
        window_delivered=sum(w["delivered"] for w in out_windows),
        blackholed=blackholed,
        rejected=rejected,
        blackholed_rate=round(blackholed / w_total, 6) if w_total else 0.0,
        rejected_rate=round(rejected / w_total, 6) if w_total else 0.0,
        timeline=timeline,
        source=source,
    )


def describe(r: StatsdPhase) -> str:
    """One sentence for reports (pure)."""
    text = (
        f"statsd sender: {r['sent']} datagrams sent, {r['delivered']} delivered (counted at "
        f"the receivers), {r['lost']} lost"
    )
    if r["zero_windows"]:
        text += (
            f"; while the Service had no endpoint {r['window_sent']} were sent: "
            f"{r['blackholed']} blackholed (to a deleted pod), {r['rejected']} rejected by "
            f"kube-proxy's rule at the node"
        )
    return text + "."
