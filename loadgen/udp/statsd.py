"""A one-way UDP sender, as a statsd client sends: fire and forget, one socket, one port.

A statsd client opens one UDP socket when its process starts and ``sendto``s every metric
from it, never reading a reply and never reopening it: every datagram carries the same
5-tuple and refreshes one conntrack entry, so kube-proxy's stale-entry bugs
(kubernetes#139628) blackhole it exactly as they blackhole a resolver that keeps its port.
The sender cannot tell: its delivery is counted at the receivers (the harness's nft counters
in the receiving pods' namespaces) and where the rest went on the nodes.

Each client pod's socket is made in the pod's namespace, bound to the pod's IP and an
ephemeral port, left unconnected (ICMP errors are not reported to it, as to a statsd client),
and sends :data:`PAYLOAD` every ``1/rate`` s. The datagram is a real statsd counter line and
is shorter than a DNS header (12 bytes), so sent to a DNS server's port it is told apart from
every DNS query by its length (:data:`MAX_UDP_LENGTH`), and CoreDNS drops it unanswered.

Counted per second of its send time (:class:`SendTally`, pure); the I/O is :func:`run_statsd`.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from typing import TypedDict

from cthcommon.netns import entered
from loadgen.udp.sameport import SamePortPod, paced

PAYLOAD = b"cth:1|c"  # statsd: counter "cth", +1
DNS_HEADER = 12
MAX_UDP_LENGTH = 8 + DNS_HEADER - 1  # UDP length of any datagram shorter than a DNS header
assert 8 + len(PAYLOAD) <= MAX_UDP_LENGTH


@dataclass(frozen=True)
class StatsdPlan:
    target: str  # the Service's ClusterIP
    rate: float  # datagrams per second from each pod
    duration_s: float
    port: int = 53


class StatsdResult(TypedDict):
    target: str
    port: int
    rate_per_pod: float
    payload: str
    pods: int
    sent: int
    send_errors: int  # sendto failed (the datagram never left the pod)
    source_ports: dict[str, int]  # pod IP -> the one source port it used all phase
    timeline: list[list[int]]  # [second, sent] by send time, seconds since the load began
    by_pod: dict[str, list[list[int]]]


@dataclass
class SendTally:
    """Datagrams by the second they were sent (pure)."""

    rows: dict[int, int] = field(default_factory=dict)
    errors: int = 0

    def sent(self, at: float) -> None:
        s = int(at)
        self.rows[s] = self.rows.get(s, 0) + 1

    def add(self, other: SendTally) -> None:
        for s, n in other.rows.items():
            self.rows[s] = self.rows.get(s, 0) + n
        self.errors += other.errors

    def total(self) -> int:
        return sum(self.rows.values())

    def timeline(self) -> list[list[int]]:
        return [[s, n] for s, n in sorted(self.rows.items())]


class _Sender:
    def __init__(self, pod: SamePortPod, plan: StatsdPlan, t0: float) -> None:
        with entered(pod.netns):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.bind((pod.ip, 0))  # its port, fixed before the first datagram
        self.port = self.sock.getsockname()[1]
        self.pod = pod
        self.dest = (plan.target, plan.port)
        self.t0 = t0
        self.tally = SendTally()

    def send(self) -> None:
        try:
            self.sock.sendto(PAYLOAD, self.dest)
        except OSError:
            self.tally.errors += 1
            return
        self.tally.sent(time.monotonic() - self.t0)


async def run_statsd(pods: list[SamePortPod], plan: StatsdPlan) -> StatsdResult:
    """Send from one unconnected socket per pod at ``plan.rate`` for ``plan.duration_s``."""
    t0 = time.monotonic()
    senders = [_Sender(p, plan, t0) for p in pods]

    def tick() -> None:
        for s in senders:
            s.send()

    try:
        await paced(plan.rate, plan.duration_s, t0, tick)
    finally:
        for s in senders:
            s.sock.close()
    tally = SendTally()
    for s in senders:
        tally.add(s.tally)
    return StatsdResult(
        target=plan.target,
        port=plan.port,
        rate_per_pod=plan.rate,
        payload=PAYLOAD.decode(),
        pods=len(senders),
        sent=tally.total(),
        send_errors=tally.errors,
        source_ports={s.pod.ip: s.port for s in senders},
        timeline=tally.timeline(),
        by_pod={s.pod.ip: s.tally.timeline() for s in senders},
    )
