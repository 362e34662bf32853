"""A client that keeps its source port: one connected UDP socket per pod for the whole phase.

nginx's resolver and statsd senders open one UDP socket and send from it for as long as the
process lives, so every packet carries the same 5-tuple and refreshes one conntrack entry.
That is the client kube-proxy's stale-entry bugs blackhole (kubernetes#139628): while its
entry stays DNATed to an endpoint that no longer exists, nothing it sends arrives.

Each pod's socket is made in the pod's namespace and ``connect``ed to the Service (so an ICMP
port unreachable for it is reported on the socket as ECONNREFUSED, as it is to nginx). It
sends one DNS query (A, one name) every ``1/rate`` s and never reopens. Each query ends as:
- ``answered``: a reply with its id arrived within ``timeout_s``;
- ``refused``: the socket reported ECONNREFUSED while it was the oldest one waiting (the
  kernel does not say which packet the ICMP error was for; at this rate one is in flight);
- ``silent``: neither within ``timeout_s``: it went somewhere that never answered.

Counted per second of its send time (:class:`Tally`, pure); the I/O is :func:`run_same_port`.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypedDict

import dns.message
import dns.rdatatype

from cthcommon.netns import entered

OUTCOMES = ("answered", "refused", "silent")


@dataclass(frozen=True)
class SamePortPod:
    netns: str | None  # None: this process's own namespace (a worker inside a real pod)
    ip: str


@dataclass(frozen=True)
class SamePortPlan:
    target: str  # the Service's ClusterIP
    rate: float  # queries per second from each pod
    name: str
    timeout_s: float
    duration_s: float
    port: int = 53


class SamePortResult(TypedDict):
    target: str
    port: int
    name: str
    rate_per_pod: float
    timeout_s: float
    pods: int
    sent: int
    answered: int
    refused: int
    silent: int
    send_errors: int  # socket errors other than ECONNREFUSED (their queries end silent)
    source_ports: dict[str, int]  # pod IP -> the one source port it used all phase
    reopened: int  # sockets opened beyond the first per pod (always 0: it never reopens)
    timeline: list[list[int]]  # [second, sent, answered, refused, silent] by send time
    by_pod: dict[str, list[list[int]]]  # pod IP -> its own timeline rows


@dataclass
class Tally:
    """Queries by the second they were sent, and how each ended (pure)."""

    rows: dict[int, list[int]] = field(default_factory=dict)
    send_errors: int = 0

    def _row(self, sent_at: float) -> list[int]:
        return self.rows.setdefault(int(sent_at), [0, 0, 0, 0])

    def sent(self, at: float) -> None:
        self._row(at)[0] += 1

    def ended(self, sent_at: float, outcome: str) -> None:
        self._row(sent_at)[1 + OUTCOMES.index(outcome)] += 1

    def timeline(self) -> list[list[int]]:
        return [[s, *r] for s, r in sorted(self.rows.items())]

    def add(self, other: Tally) -> None:
        for s, r in other.rows.items():
            row = self.rows.setdefault(s, [0, 0, 0, 0])
            for i, v in enumerate(r):
                row[i] += v
        self.send_errors += other.send_errors

    def totals(self) -> dict[str, int]:
        cols = list(zip(*self.rows.values(), strict=True)) if self.rows else [(), (), (), ()]
        return {k: sum(c) for k, c in zip(("sent", *OUTCOMES), cols, strict=True)}


@dataclass
class Waiting:
    """The queries one socket has in flight, oldest first (pure)."""

    queue: deque[tuple[int, float]] = field(default_factory=deque)  # (id, sent_at)

    def add(self, qid: int, at: float) -> None:
        self.queue.append((qid, at))

    def answer(self, qid: int) -> float | None:
        """The send time of query ``qid`` (now answered), or None if it is not waiting."""
        for i, (q, at) in enumerate(self.queue):
            if q == qid:
                del self.queue[i]
                return at
        return None

    def refuse_oldest(self) -> float | None:
        return self.queue.popleft()[1] if self.queue else None

    def expire(self, now: float, timeout_s: float) -> list[float]:
        """Send times of the queries that waited ``timeout_s`` without an answer."""
        out = []
        while self.queue and now - self.queue[0][1] >= timeout_s:
            out.append(self.queue.popleft()[1])
        return out


def query_wire(name: str, qid: int) -> bytes:
    q = dns.message.make_query(name, dns.rdatatype.A)
    q.id = qid
    return q.to_wire()


def reply_id(data: bytes) -> int | None:
    """The id of a DNS reply (QR set), or None for anything else."""
    if len(data) < 12:
        return None
    qid, flags = struct.unpack("!HH", data[:4])
    return qid if flags & 0x8000 else None


class _Pod:
    def __init__(self, pod: SamePortPod, plan: SamePortPlan, t0: float) -> None:
        with entered(pod.netns):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.connect((plan.target, plan.port))  # ICMP errors come back on this socket
        self.port = self.sock.getsockname()[1]
        self.pod = pod
        self.plan = plan
        self.t0 = t0
        self.tally = Tally()
        self.waiting = Waiting()
        self.next_id = 1

    def _now(self) -> float:
        return time.monotonic() - self.t0

    def refused(self) -> None:
        at = self.waiting.refuse_oldest()
        if at is not None:
            self.tally.ended(at, "refused")

    def send(self) -> None:
        qid = self.next_id
        self.next_id = self.next_id % 0xFFFF + 1
        wire = query_wire(self.plan.name, qid)
        for _ in range(2):  # a pending ICMP error fails the next send once, unsent
            try:
                self.sock.send(wire)
            except ConnectionRefusedError:
                self.refused()
                continue
            except (BlockingIOError, OSError):
                self.tally.send_errors += 1
                return
            at = self._now()
            self.tally.sent(at)
            self.waiting.add(qid, at)
            return

    def readable(self) -> None:
        while True:
            try:
                data = self.sock.recv(4096)
            except BlockingIOError:
                return
            except ConnectionRefusedError:
                self.refused()
                continue
            except OSError:  # another ICMP error: counted, and the query ends silent
                self.tally.send_errors += 1
                continue
            qid = reply_id(data)
            at = self.waiting.answer(qid) if qid is not None else None
            if at is not None:
                self.tally.ended(at, "answered")

    def expire(self, final: bool = False) -> None:
        for at in self.waiting.expire(self._now(), 0.0 if final else self.plan.timeout_s):
            self.tally.ended(at, "silent")


async def paced(rate: float, duration_s: float, t0: float, tick: Callable[[], None]) -> None:
    """Call ``tick`` ``rate`` times a second on the clock started at ``t0`` (monotonic) until
    ``duration_s``: the same-port client's and the statsd sender's send schedule."""
    period = 1.0 / rate
    n = 0
    while (due := n * period) < duration_s:
        await asyncio.sleep(max(0.0, due - (time.monotonic() - t0)))
        tick()
        n += 1


async def run_same_port(pods: list[SamePortPod], plan: SamePortPlan) -> SamePortResult:
    """Send from one connected socket per pod at ``plan.rate`` for ``plan.duration_s``, then
    wait ``timeout_s`` for the last answers; every query ends answered, refused or silent."""
    loop = asyncio.get_running_loop()
    t0 = time.monotonic()
    clients = [_Pod(p, plan, t0) for p in pods]
    for c in clients:
        loop.add_reader(c.sock.fileno(), c.readable)

    def tick() -> None:
        for c in clients:
            c.expire()
            c.send()

    try:
        await paced(plan.rate, plan.duration_s, t0, tick)
        end = time.monotonic() + plan.timeout_s
        while time.monotonic() < end and any(c.waiting.queue for c in clients):
            await asyncio.sleep(0.05)
            for c in clients:
                c.expire()
        for c in clients:
            c.readable()
            c.expire(final=True)
    finally:
        for c in clients:
            loop.remove_reader(c.sock.fileno())
            c.sock.close()
    tally = Tally()
    for c in clients:
        tally.add(c.tally)
    totals = tally.totals()
    return SamePortResult(
        target=plan.target,
        port=plan.port,
        name=plan.name,
        rate_per_pod=plan.rate,
        timeout_s=plan.timeout_s,
        pods=len(clients),
        sent=totals["sent"],
        answered=totals["answered"],
        refused=totals["refused"],
        silent=totals["silent"],
        send_errors=tally.send_errors,
        source_ports={c.pod.ip: c.port for c in clients},
        reopened=0,
        timeline=tally.timeline(),
        by_pod={c.pod.ip: c.tally.timeline() for c in clients},
    )
