"""A minimal single-threaded event loop for the DNS engine, and its transport.

asyncio spends tens of microseconds per lookup on tasks, futures, timer handles and selector
bookkeeping; at 10,000 lookups/s on two cores that is the whole budget. The resolver models
are plain coroutines that only ever wait on "a reply on these sockets, or this deadline", so
this loop drives them directly: ``coro.send()``, one ``epoll``, and one heap of deadlines.
The models and the wire code are the same ones the asyncio transport and the fake use.

Sockets are made inside the pod's network namespace with
:func:`harness.kernel.netns.socket_in` (a batch at a time, via ``entered``).
"""

from __future__ import annotations

import _socket
import heapq
import itertools
import random
import select
import socket
import time
from collections import deque
from collections.abc import Callable, Coroutine, Generator, Sequence
from typing import Any, TypeVar

from harness.kernel.netns import entered, socket_in
from loadgen.dns.models.base import QType, Reply, Sock, TransportError
from loadgen.dns.wire import QueryCache, parse_reply

DNS_PORT = 53
_POOL_BATCH = 64
_TCP_CONNECT_TIMEOUT = 1.0


T = TypeVar("T")


class _Wait:
    """What a model coroutine yields to the loop: wake me on a reply or at ``deadline``."""

    __slots__ = ("deadline", "done", "socks", "task")

    def __init__(self, socks: Sequence[_FSock], deadline: float) -> None:
        self.socks = socks
        self.deadline = deadline
        self.done = False
        self.task: _Task | None = None

    def __await__(self) -> Generator[_Wait, None, None]:
        yield self


class _Task:
    __slots__ = ("coro", "on_done")

    def __init__(self, coro: Coroutine[Any, Any, Any], on_done: Callable[[Any], None]) -> None:
        self.coro = coro
        self.on_done = on_done


class _FSock(Sock):
    __slots__ = ("error", "fd", "id_waiters", "ids", "parked", "queue", "rbuf", "sk", "waiter")

    def __init__(self, sk: _socket.socket, port: int, proto: str, server: str | None) -> None:
        self.port = port
        self.proto = "tcp" if proto == "tcp" else "udp"
        self.server = server
        self.sk = sk
        self.fd = sk.fileno()
        self.ids: dict[int, tuple[str, QType, bytes]] = {}
        self.queue: deque[Reply] = deque()
        self.waiter: _Wait | None = None
        self.error: OSError | None = None
        self.rbuf = b""
        # shared sockets (c-ares): replies by ID, and who waits for which ID
        self.parked: dict[int, Reply] = {}
        self.id_waiters: dict[int, _Wait] = {}


class FastLoop:
    """epoll + a deadline heap + a run queue of coroutines."""

    def __init__(self) -> None:
        self.ep = select.epoll()
        self.socks: dict[int, _FSock] = {}
        self.timers: list[tuple[float, int, _Wait]] = []
        self.ready: deque[_Task] = deque()
        self._seq = itertools.count()
        self.now = time.monotonic

    def close(self) -> None:
        self.ep.close()

    # --- tasks ---------------------------------------------------------------------------
    def spawn(self, coro: Coroutine[Any, Any, Any], on_done: Callable[[Any], None]) -> None:
        self._step(_Task(coro, on_done))

    def _step(self, task: _Task) -> None:
        try:
            w = task.coro.send(None)
        except StopIteration as stop:
            task.on_done(stop.value)
            return
        if not isinstance(w, _Wait):
            task.coro.close()
            raise TypeError(f"the DNS fast loop cannot wait on {w!r}")
        w.task = task
        for s in w.socks:
            s.waiter = w
        heapq.heappush(self.timers, (w.deadline, next(self._seq), w))

    def _wake(self, w: _Wait) -> None:
        if w.done:
            return
        w.done = True
        for s in w.socks:
            if s.waiter is w:
                s.waiter = None
        assert w.task is not None
        self.ready.append(w.task)

    def run_until_complete(self, coro: Coroutine[Any, Any, T]) -> T:
        """Drive one coroutine to its end on this loop (what tests and one-off lookups need)."""
        out: list[T] = []
        self.spawn(coro, out.append)
        while not out:
            self.run_once(0.05)
        return out[0]

    # --- one turn ------------------------------------------------------------------------
    def run_once(self, max_wait: float) -> None:
        """Run ready tasks, wait for I/O up to ``max_wait`` s (or the next deadline), expire."""
        while self.ready:
            self._step(self.ready.popleft())
        timeout = max_wait
        if self.timers:
            timeout = min(timeout, self.timers[0][0] - self.now())
        for fd, _ev in self.ep.poll(max(timeout, 0.0)):
            s = self.socks.get(fd)
            if s is not None:
                self._readable(s)
        now = self.now()
        timers = self.timers
        while timers and timers[0][0] <= now:
            self._wake(heapq.heappop(timers)[2])
        while self.ready:
            self._step(self.ready.popleft())

    def _readable(self, s: _FSock) -> None:
        # One datagram per readiness event: epoll is level-triggered, so a second queued
        # reply is reported again on the next turn. That is cheaper than reading until the
        # EAGAIN exception on every event.
        try:
            if s.proto == "udp":
                data, addr = s.sk.recvfrom(4096)
                reply = parse_reply(data, s.ids, addr[0])
                if reply is not None:
                    s.queue.append(reply)
            else:
                self._read_stream(s)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as e:
            s.error = e
            self._forget(s)
        if s.waiter is not None and (s.queue or s.error is not None):
            self._wake(s.waiter)
        if s.id_waiters:
            if s.error is not None:
                for w in list(s.id_waiters.values()):
                    self._wake(w)
            else:
                for r in s.queue:
                    by_id = s.id_waiters.get(r.qid)
                    if by_id is not None:
                        self._wake(by_id)

    def _read_stream(self, s: _FSock) -> None:
        chunk = s.sk.recv(65536)
        if not chunk:
            raise ConnectionResetError("connection closed by server")
        s.rbuf += chunk
        while len(s.rbuf) >= 2:
            n = int.from_bytes(s.rbuf[:2], "big")
            if len(s.rbuf) < 2 + n:
                break
            msg, s.rbuf = s.rbuf[2 : 2 + n], s.rbuf[2 + n :]
            reply = parse_reply(msg, s.ids, s.server or "")
            if reply is not None:
                s.queue.append(reply)

    def _forget(self, s: _FSock) -> None:
        if self.socks.pop(s.fd, None) is not None:
            self.ep.unregister(s.fd)


class FastTransport:
    """The engine's :class:`~loadgen.dns.models.base.Transport` for one pod namespace."""

    def __init__(self, netns: str | None, loop: FastLoop) -> None:
        self.netns = netns
        self.loop = loop
        self._pool: list[_socket.socket] = []
        self._queries = QueryCache()
        self._next_id = random.getrandbits(16)
        self.now = loop.now

    def _udp_socket(self, family: int) -> _socket.socket:
        if family != socket.AF_INET:
            return socket_in(self.netns, family, socket.SOCK_DGRAM)
        if not self._pool:
            # The C socket type directly: socket.socket's Python-level __init__ and close cost
            # several microseconds per lookup at these rates.
            with entered(self.netns):
                fresh = [
                    _socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(_POOL_BATCH)
                ]
            for s in fresh:
                s.setblocking(False)
            fresh.reverse()
            self._pool = fresh
        return self._pool.pop()

    async def open(self, server: str | None, *, tcp: bool = False) -> Sock:
        family = socket.AF_INET6 if server and ":" in server else socket.AF_INET
        sk: _socket.socket
        try:
            if tcp:
                if server is None:
                    raise TransportError("a TCP socket needs a server")
                # A blocking connect (bounded) keeps this loop simple; use-vc is the rare case.
                sk = socket_in(self.netns, family, socket.SOCK_STREAM)
                sk.settimeout(_TCP_CONNECT_TIMEOUT)
                try:
                    sk.connect((server, DNS_PORT))
                except OSError:
                    sk.close()
                    raise
                sk.setblocking(False)
            else:
                sk = self._udp_socket(family)
                if server is not None:
                    sk.connect((server, DNS_PORT))
                else:
                    sk.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
        except OSError as e:
            raise TransportError(f"open {'tcp' if tcp else 'udp'} to {server}: {e}") from e
        s = _FSock(sk, sk.getsockname()[1], "tcp" if tcp else "udp", server)
        self.loop.socks[s.fd] = s
        self.loop.ep.register(s.fd, select.EPOLLIN)
        return s

    def close(self, sock: Sock) -> None:
        assert isinstance(sock, _FSock)
        # Closing the only descriptor of a socket drops it from the epoll set by itself.
        self.loop.socks.pop(sock.fd, None)
        sock.sk.close()

    def close_pool(self) -> None:
        for s in self._pool:
            s.close()
        self._pool.clear()

    def send(self, sock: Sock, server: str, qname: str, qtype: QType, *, edns: bool = False) -> int:
        assert isinstance(sock, _FSock)
        wire, question = self._queries.get(qname, qtype, edns)
        qid = self._next_id = (self._next_id + 1) & 0xFFFF
        data = qid.to_bytes(2, "big") + wire[2:]
        sock.ids[qid] = (qname, qtype, question)
        try:
            if sock.proto == "tcp":
                sock.sk.send(len(data).to_bytes(2, "big") + data)
            elif sock.server is not None:
                sock.sk.send(data)
            else:
                sock.sk.sendto(data, (server, DNS_PORT))
        except BlockingIOError:
            pass  # a full send buffer loses the datagram, as it would for a real client
        except OSError as e:
            raise TransportError(f"send to {server}: {e}") from e
        return qid

    async def recv(self, sock: Sock, deadline: float) -> Reply | None:
        assert isinstance(sock, _FSock)
        while True:
            if sock.queue:
                return sock.queue.popleft()
            if sock.error is not None:
                raise TransportError(f"socket error: {sock.error}")
            if self.loop.now() >= deadline:
                return None
            await _Wait((sock,), deadline)

    async def recv_any(self, socks: Sequence[Sock], deadline: float) -> tuple[Sock, Reply] | None:
        fs: list[_FSock] = []
        for sock in socks:
            assert isinstance(sock, _FSock)
            fs.append(sock)
        while True:
            for s in fs:
                if s.queue:
                    return s, s.queue.popleft()
                if s.error is not None:
                    raise TransportError(f"socket error: {s.error}")
            if self.loop.now() >= deadline:
                return None
            await _Wait(fs, deadline)

    async def recv_ids(
        self, socks: Sequence[Sock], qids: frozenset[int], deadline: float
    ) -> tuple[Sock, Reply] | None:
        fs: list[_FSock] = []
        for sock in socks:
            assert isinstance(sock, _FSock)
            fs.append(sock)
        while True:
            for s in fs:
                while s.queue:  # what arrived while nobody waited by ID
                    r = s.queue.popleft()
                    s.parked[r.qid] = r
                for q in qids:
                    if q in s.parked:
                        return s, s.parked.pop(q)
                if s.error is not None:
                    raise TransportError(f"socket error: {s.error}")
            if self.loop.now() >= deadline:
                return None
            w = _Wait((), deadline)
            for s in fs:
                for q in qids:
                    s.id_waiters[q] = w
            try:
                await w
            finally:
                for s in fs:
                    for q in qids:
                        if s.id_waiters.get(q) is w:
                            del s.id_waiters[q]
