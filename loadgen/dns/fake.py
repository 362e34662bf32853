"""A deterministic, in-memory :class:`~loadgen.dns.models.base.Transport` with a virtual clock.

Used to unit-test resolver models without root: every query is logged (time, port, name,
type), replies arrive ``rtt`` seconds later unless a drop rule says otherwise, and waiting
until a deadline just moves the clock. Nothing here ever really sleeps or suspends, so a model
coroutine run on it completes in one step (:func:`drive`).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from loadgen.dns.models.base import NOERROR, NXDOMAIN, REFUSED, QType, Reply, Sock

T = TypeVar("T")


@dataclass(frozen=True)
class SentQuery:
    """One query the fake network saw."""

    t: float
    port: int
    proto: str
    server: str
    qname: str
    qtype: QType
    sock_seq: int  # 1 for the first query on this socket, 2 for the second ...
    replies_before: int  # replies this socket had received when it was sent
    dropped: bool = False


@dataclass
class Zone:
    """What the fake server answers: A for ``names`` (AAAA too for ``aaaa``), else NODATA for
    ``names`` and ``nodata``, else NXDOMAIN."""

    names: set[str] = field(default_factory=set)
    aaaa: set[str] = field(default_factory=set)
    nodata: set[str] = field(default_factory=set)  # names that exist with no A/AAAA
    refused: set[str] = field(default_factory=set)  # a server shedding load (REFUSED)

    def answer(self, qname: str, qtype: QType) -> tuple[int, int]:
        name = qname.lower().rstrip(".")
        if name in self.refused:
            return REFUSED, 0
        if name in self.nodata:
            return NOERROR, 0
        if name in self.names:
            return NOERROR, (1 if qtype == "A" or name in self.aaaa else 0)
        return NXDOMAIN, 0


DropRule = Callable[[SentQuery], bool]


def drop_second_of_unanswered_pair(q: SentQuery) -> bool:
    """The A/AAAA race: the 2nd query of a socket that has had no reply yet is lost."""
    return q.sock_seq == 2 and q.replies_before == 0


class _FakeSock(Sock):
    __slots__ = ("ids", "pending", "replies", "sent")

    def __init__(self, port: int, proto: str, server: str | None) -> None:
        super().__init__(port, "tcp" if proto == "tcp" else "udp", server)
        self.sent = 0
        self.replies = 0
        self.pending: list[tuple[float, Reply]] = []
        self.ids: dict[int, tuple[str, QType]] = {}


class FakeTransport:
    """Virtual-clock network: one or more servers answering from a :class:`Zone`."""

    def __init__(
        self,
        zone: Zone,
        *,
        rtt: float = 0.001,
        drop: DropRule | None = None,
        down: frozenset[str] = frozenset(),
        first_port: int = 40000,
    ) -> None:
        self.zone = zone
        self.rtt = rtt
        self.drop = drop or (lambda _q: False)
        self.down = down
        self.clock = 0.0
        self.log: list[SentQuery] = []
        self._next_port = first_port
        self._next_id = 1
        self.closed: list[int] = []

    def now(self) -> float:
        return self.clock

    async def open(self, server: str | None, *, tcp: bool = False) -> Sock:
        port = self._next_port
        self._next_port += 1
        return _FakeSock(port, "tcp" if tcp else "udp", server)

    def send(self, sock: Sock, server: str, qname: str, qtype: QType, *, edns: bool = False) -> int:
        assert isinstance(sock, _FakeSock)
        qid = self._next_id
        self._next_id += 1
        sock.sent += 1
        q = SentQuery(
            t=self.clock,
            port=sock.port,
            proto=sock.proto,
            server=server,
            qname=qname,
            qtype=qtype,
            sock_seq=sock.sent,
            replies_before=sock.replies,
        )
        lost = server in self.down or self.drop(q)
        self.log.append(SentQuery(**{**q.__dict__, "dropped": lost}))
        sock.ids[qid] = (qname, qtype)
        if not lost:
            rcode, an = self.zone.answer(qname, qtype)
            sock.pending.append(
                (self.clock + self.rtt, Reply(qid, qname, qtype, server, rcode, an))
            )
            sock.pending.sort(key=lambda p: p[0])
        return qid

    async def recv(self, sock: Sock, deadline: float) -> Reply | None:
        assert isinstance(sock, _FakeSock)
        if sock.pending and sock.pending[0][0] <= deadline:
            at, reply = sock.pending.pop(0)
            self.clock = max(self.clock, at)
            sock.replies += 1
            return reply
        self.clock = max(self.clock, deadline)
        return None

    async def recv_any(self, socks: Sequence[Sock], deadline: float) -> tuple[Sock, Reply] | None:
        best: _FakeSock | None = None
        for s in socks:
            assert isinstance(s, _FakeSock)
            if (
                s.pending
                and s.pending[0][0] <= deadline
                and (best is None or s.pending[0][0] < best.pending[0][0])
            ):
                best = s
        if best is None:
            self.clock = max(self.clock, deadline)
            return None
        reply = await self.recv(best, deadline)
        assert reply is not None
        return best, reply

    async def recv_ids(
        self, socks: Sequence[Sock], qids: frozenset[int], deadline: float
    ) -> tuple[Sock, Reply] | None:
        best: tuple[float, _FakeSock, int] | None = None
        for s in socks:
            assert isinstance(s, _FakeSock)
            for i, (at, r) in enumerate(s.pending):
                if r.qid in qids and at <= deadline and (best is None or at < best[0]):
                    best = (at, s, i)
        if best is None:
            self.clock = max(self.clock, deadline)
            return None
        at, sock, i = best
        _, reply = sock.pending.pop(i)
        self.clock = max(self.clock, at)
        sock.replies += 1
        return sock, reply

    def close(self, sock: Sock) -> None:
        self.closed.append(sock.port)

    # --- helpers for tests ---------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        self.clock += seconds


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (a model on the fake transport) to completion."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise RuntimeError("coroutine suspended: the fake transport must never block")
