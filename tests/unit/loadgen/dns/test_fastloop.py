"""The engine's loop: deadlines (one timer entry per task, in order or not) and replies, on a
clock the test moves and a datagram socket pair (no root, no network)."""

from __future__ import annotations

import socket

import pytest

from loadgen.dns.fastloop import FastLoop, FastTransport, _FSock, _wait
from loadgen.dns.wire import QueryCache

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def loop_on(clock: Clock) -> FastLoop:
    loop = FastLoop()
    loop.now = clock
    return loop


def advance(loop: FastLoop, clock: Clock, until: float, step: float = 0.25) -> None:
    while clock.t < until:
        clock.t = round(clock.t + step, 6)
        loop.run_once(0.0)


def test_deadlines_wake_in_order_never_early() -> None:
    clock = Clock()
    loop = loop_on(clock)
    woke: list[tuple[str, float]] = []

    async def waiter(name: str, deadlines: list[float]) -> None:
        for d in deadlines:
            await _wait((), d)
            assert clock.t >= d, f"{name} woke at {clock.t}, before its deadline {d}"
            woke.append((name, clock.t))

    done: list[object] = []
    loop.spawn(waiter("a", [5.0]), done.append)
    loop.spawn(waiter("b", [3.0]), done.append)  # earlier than the last one filed: the heap
    loop.spawn(waiter("c", [1.0, 4.0, 4.5]), done.append)  # waits again, later each time
    loop.spawn(waiter("d", [2.0, 1.5]), done.append)  # its second wait is already due
    advance(loop, clock, 6.0)
    assert woke == [
        ("c", 1.0),
        ("d", 2.0),
        ("d", 2.25),
        ("b", 3.0),
        ("c", 4.0),
        ("c", 4.5),
        ("a", 5.0),
    ]
    assert len(done) == 4
    assert not loop.fifo
    assert not loop.heap
    loop.close()


def _pair(loop: FastLoop) -> tuple[_FSock, socket.socket]:
    """A connected datagram pair: the loop's socket, and the "server" end the test writes."""
    mine, server = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    mine.setblocking(False)
    s = _FSock(mine, 4242, "udp", "10.0.0.10")
    loop.socks[s.fd] = s
    loop.ep.register(s.fd, 1)  # EPOLLIN
    return s, server


def _reply_to(query: bytes, rcode: int = 0, ancount: int = 1) -> bytes:
    flags = 0x8000 | 0x0400 | 0x0080 | 0x0100 | rcode  # QR AA RA RD
    return (
        query[:2] + flags.to_bytes(2, "big") + query[4:6] + ancount.to_bytes(2, "big") + query[8:]
    )


def test_a_reply_wakes_the_waiter_and_its_timer_entry_goes_stale() -> None:
    clock = Clock()
    loop = loop_on(clock)
    t = FastTransport(None, loop)
    sock, server = _pair(loop)
    got: list[object] = []

    async def one() -> None:
        qid = t.send(sock, "10.0.0.10", "a.example.", "A")
        reply = await t.recv(sock, 5.0)
        assert reply is not None
        assert reply.qid == qid
        got.append((reply.qname, reply.qtype, reply.rcode, reply.ancount, clock.t))
        # a second wait, nothing comes: woken at its deadline by the same, re-filed timer
        got.append(await t.recv(sock, 7.0))
        got.append(clock.t)

    done: list[object] = []
    loop.spawn(one(), done.append)
    query = server.recv(512)
    assert query[12:] == QueryCache().get("a.example.", "A", False)[0][10:]
    clock.t = 0.5
    server.send(b"\x00" * 5)  # too short to be a reply: ignored, no wake
    server.send(_reply_to(query))
    loop.run_once(0.0)  # one datagram per readiness event: the junk first
    assert not got
    loop.run_once(0.0)
    assert got == [("a.example.", "A", 0, 1, 0.5)]
    advance(loop, clock, 7.5)
    assert got[1:] == [None, 7.0]
    assert done
    server.close()
    sock.sk.close()
    loop.close()


def test_a_reply_to_another_id_or_question_is_not_taken() -> None:
    clock = Clock()
    loop = loop_on(clock)
    t = FastTransport(None, loop)
    sock, server = _pair(loop)
    got: list[object] = []

    async def one() -> None:
        got.append(await t.recv(sock, 2.0))

    t.send(sock, "10.0.0.10", "a.example.", "A")
    query = server.recv(512)
    loop.spawn(one(), lambda _: None)
    wrong_id = bytes([query[0] ^ 0xFF]) + _reply_to(query)[1:]
    other = QueryCache().get("b.example.", "A", False)[0]
    wrong_q = _reply_to(query[:12] + other[10:])
    server.send(wrong_id)
    server.send(wrong_q)
    advance(loop, clock, 3.0)
    assert got == [None]
    assert len(sock.ids) == 1  # still waiting for its own reply
    reply = _reply_to(query)
    server.send(reply[:12] + reply[12:].upper())  # the name in another case: still ours
    loop.run_once(0.0)
    assert sock.queue
    assert not sock.ids
    server.close()
    sock.sk.close()
    loop.close()
