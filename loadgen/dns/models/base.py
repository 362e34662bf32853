"""What every resolver model is written against: a tiny transport protocol, and a recorder.

A model never touches a socket. It asks a :class:`Transport` to open a UDP or TCP "socket"
(which yields a source port), send a query (name, type) on it, wait for a reply until a
deadline, and close it. The same model code runs on the real epoll transport
(:mod:`loadgen.dns.fastloop`) and on the virtual-clock fake (:mod:`loadgen.dns.fake`).

:class:`Recorder` wraps any transport and writes down every query a lookup sent: port, time,
reply, rcode. Models only decide; the recorder counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple, Protocol

from cthcommon.errors import HarnessError
from loadgen.dns.types import AttemptRecord, Outcome

QType = Literal["A", "AAAA"]
PAIR: tuple[QType, QType] = ("A", "AAAA")
# What a lookup asks for: "any" (AF_UNSPEC: A and AAAA) or "ipv4" (AF_INET in C, Go's "ip4":
# A only, so no A/AAAA pair can meet the conntrack insert race).
Family = Literal["any", "ipv4"]
FAMILIES: tuple[str, ...] = ("any", "ipv4")
FAMILY_QTYPES: dict[str, tuple[QType, ...]] = {"any": PAIR, "ipv4": ("A",)}

NOERROR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 2, 3, 4, 5
RCODE_TEXT = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}

# What one query (or one pair of queries) ended as, in h_errno-like terms.
Status = Literal["ok", "nxdomain", "nodata", "servfail", "timeout", "error"]


class TransportError(HarnessError):
    """The transport failed (socket error, ICMP port unreachable, connection refused)."""


class Sock:
    """An open client socket. Transports subclass it; models read ``port`` and ``proto``."""

    __slots__ = ("port", "proto", "server")

    def __init__(self, port: int, proto: Literal["udp", "tcp"], server: str | None) -> None:
        self.port = port
        self.proto = proto
        self.server = server


class Reply(NamedTuple):
    """The header of a reply that matched a query sent on the socket it came in on."""

    qid: int
    qname: str
    qtype: QType
    server: str
    rcode: int
    ancount: int
    arcount: int = 0
    aa: bool = True
    ra: bool = True
    tc: bool = False

    @property
    def has_answer(self) -> bool:
        return self.rcode == NOERROR and self.ancount > 0


class Transport(Protocol):
    def now(self) -> float:
        """The transport's clock, in seconds (monotonic; virtual in the fake)."""
        ...

    async def open(self, server: str | None, *, tcp: bool = False) -> Sock:
        """A new socket; ``server`` given: connected to it (UDP) or TCP-connected."""
        ...

    def send(self, sock: Sock, server: str, qname: str, qtype: QType, *, edns: bool = False) -> int:
        """Send one query; returns its DNS id."""
        ...

    async def recv(self, sock: Sock, deadline: float) -> Reply | None:
        """The next matching reply on ``sock``, or None once ``deadline`` has passed."""
        ...

    async def recv_any(self, socks: Sequence[Sock], deadline: float) -> tuple[Sock, Reply] | None:
        """The next reply on any of ``socks`` (and which), or None after ``deadline``."""
        ...

    async def recv_ids(
        self, socks: Sequence[Sock], qids: frozenset[int], deadline: float
    ) -> tuple[Sock, Reply] | None:
        """The next reply on any of ``socks`` whose ID is one of ``qids``, or None after
        ``deadline``. Replies with other IDs stay for whoever waits for them: several
        lookups can share one socket (c-ares)."""
        ...

    def close(self, sock: Sock) -> None: ...


class Recorder:
    """A :class:`Transport` wrapper that records what one lookup put on the wire."""

    __slots__ = (
        "_open",
        "attempts",
        "full_timeout_waits",
        "inner",
        "now",
        "ports",
        "replies",
        "retries",
        "t0",
    )

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.now = inner.now
        self.t0 = inner.now()
        self.attempts: list[AttemptRecord] = []
        self.ports: list[int] = []
        self.replies = 0
        self.full_timeout_waits = 0
        self.retries = 0
        self._open: dict[tuple[int, int], AttemptRecord] = {}

    async def open(self, server: str | None, *, tcp: bool = False) -> Sock:
        sock = await self.inner.open(server, tcp=tcp)
        if sock.port not in self.ports:
            self.ports.append(sock.port)
        return sock

    def send(self, sock: Sock, server: str, qname: str, qtype: QType, *, edns: bool = False) -> int:
        qid = self.inner.send(sock, server, qname, qtype, edns=edns)
        if sock.port not in self.ports:  # a socket opened by an earlier lookup (c-ares)
            self.ports.append(sock.port)
        att = AttemptRecord(qname, qtype, server, sock.proto, sock.port, self.now() - self.t0)
        for prev in self.attempts:
            if prev.qtype == qtype and prev.qname == qname:
                self.retries += 1
                break
        self.attempts.append(att)
        self._open[(id(sock), qid)] = att
        return qid

    async def recv(self, sock: Sock, deadline: float) -> Reply | None:
        reply = await self.inner.recv(sock, deadline)
        if reply is None:
            self.full_timeout_waits += 1
            return None
        self._note(sock, reply)
        return reply

    async def recv_any(self, socks: Sequence[Sock], deadline: float) -> tuple[Sock, Reply] | None:
        got = await self.inner.recv_any(socks, deadline)
        if got is None:
            self.full_timeout_waits += 1
            return None
        self._note(*got)
        return got

    async def recv_ids(
        self, socks: Sequence[Sock], qids: frozenset[int], deadline: float
    ) -> tuple[Sock, Reply] | None:
        got = await self.inner.recv_ids(socks, qids, deadline)
        if got is None:
            self.full_timeout_waits += 1
            return None
        self._note(*got)
        return got

    def _note(self, sock: Sock, reply: Reply) -> None:
        self.replies += 1
        att = self._open.pop((id(sock), reply.qid), None)
        if att is not None:
            att.latency_s = self.now() - self.t0 - att.t_sent
            att.rcode = RCODE_TEXT.get(reply.rcode, str(reply.rcode))

    def close(self, sock: Sock) -> None:
        self.inner.close(sock)


def pair_status(replies: list[Reply | None]) -> Status:
    """res_query's verdict on a set of replies (one per query type; None = no reply)."""
    got = [r for r in replies if r is not None]
    if any(r.has_answer for r in got):
        return "ok"
    if not got:
        return "timeout"
    # The first reply with an error rcode decides; all NOERROR means no data.
    for r in got:
        if r.rcode == NXDOMAIN:
            return "nxdomain"
        if r.rcode == SERVFAIL:
            return "servfail"
        if r.rcode != NOERROR:
            return "error"
    return "nodata"


STATUS_OUTCOME: dict[Status, Outcome] = {
    "ok": "answer",
    "nxdomain": "nxdomain",
    "nodata": "nodata",
    "servfail": "error",
    "timeout": "timeout",
    "error": "error",
}


class ResolverModel(Protocol):
    """One client "process": a resolver with whatever state it keeps between lookups."""

    name: str

    async def lookup(self, name: str, t: Transport) -> Status: ...
