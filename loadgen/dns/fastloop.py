"""A minimal single-threaded event loop for the DNS engine, and its transport.

asyncio spends tens of microseconds per lookup on tasks, futures, timer handles and selector
bookkeeping; at 10,000 lookups/s on two cores that is the whole budget. The resolver models
are plain coroutines that only ever wait on "a reply on these sockets, or this deadline", so
this loop drives them directly: ``coro.send()``, one ``epoll``, and deadline timers (one
entry per waiting task, see :class:`FastLoop`). The models and the wire code are the same
ones the fake transport uses.

Sockets are made inside the pod's network namespace with
:func:`cthcommon.netns.socket_in` (a batch at a time, via ``entered``).
"""

from __future__ import annotations

import _socket
import heapq
import itertools
import random
import select
import socket
import time
import types
from collections import deque
from collections.abc import Callable, Coroutine, Generator, Sequence
from typing import Any, TypeVar

from cthcommon.netns import entered, socket_in
from loadgen.dns.models.base import QType, Reply, Sock, TransportError
from loadgen.dns.wire import QueryCache, parse_reply

DNS_PORT = 53
_POOL_BATCH = 64
_TCP_CONNECT_TIMEOUT = 1.0


T = TypeVar("T")
_INF = float("inf")
_SOCK_FLAGS = socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC


@types.coroutine
def _wait(socks: tuple[_FSock, ...], deadline: float) -> Generator[_Waiting, None, None]:
    """What a transport awaits: the loop wakes the task on a reply on ``socks`` (or an error),
    or once ``deadline`` has passed. A bare tuple: no object per wait beyond the generator."""
    yield socks, deadline


@types.coroutine
def _wait_ids(
    socks: tuple[_FSock, ...], qids: frozenset[int], deadline: float
) -> Generator[_WaitingIds, None, None]:
    """A wait on shared sockets (c-ares): the loop wakes the task on a reply carrying one of
    ``qids`` (or an error), or once ``deadline`` has passed; other lookups' replies on the same
    sockets wake their own tasks."""
    yield socks, deadline, qids


_Waiting = tuple[tuple["_FSock", ...], float]
_WaitingIds = tuple[tuple["_FSock", ...], float, frozenset[int]]
# Every DNS id as its two wire bytes (network order), so a query is one concatenation.
_ID = [i.to_bytes(2, "big") for i in range(1 << 16)]


class _Task:
    """A model coroutine and what it waits on now (``socks`` None: running, ready or done).

    ``timer`` is the deadline of this task's earliest entry in the loop's timers (inf: none):
    a task has one live entry however often it waits, and a later deadline is only pushed when
    that entry comes due (lazily), so the pair's two waits and a search walk's windows cost
    one timer entry each time, not one per wait."""

    __slots__ = ("coro", "deadline", "on_done", "qids", "socks", "timer")

    def __init__(self, coro: Coroutine[Any, Any, Any], on_done: Callable[[Any], None]) -> None:
        self.coro = coro
        self.on_done = on_done
        self.socks: tuple[_FSock, ...] | None = None
        self.qids: frozenset[int] | None = None  # waiting by reply ID (shared sockets)
        self.deadline = 0.0
        self.timer = _INF


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
        self.waiter: _Task | None = None
        self.error: OSError | None = None
        self.rbuf = b""
        # shared sockets (c-ares): replies by ID, and which task waits for which ID
        self.parked: dict[int, Reply] = {}
        self.id_waiters: dict[int, _Task] = {}


class FastLoop:
    """epoll + deadline timers + a run queue of coroutines.

    Timers: almost every deadline is "now + the resolver's window", so deadlines arrive in
    order; those go on a FIFO (append and pop at the ends), and only an out-of-order one on
    a heap. A due entry whose task has moved on (answered, or waiting on a later deadline) is
    dropped, or re-filed at the task's current deadline."""

    def __init__(self) -> None:
        self.ep = select.epoll()
        self.socks: dict[int, _FSock] = {}
        self.fifo: deque[tuple[float, _Task]] = deque()
        self.heap: list[tuple[float, int, _Task]] = []
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
        try:
            if len(w) == 2:
                socks, deadline = w
                qids = None
            else:
                socks, deadline, qids = w
        except (TypeError, ValueError):
            task.coro.close()
            raise TypeError(f"the DNS fast loop cannot wait on {w!r}") from None
        task.socks = socks
        task.deadline = deadline
        if qids is None:
            for s in socks:
                s.waiter = task
        else:
            task.qids = qids
            for s in socks:
                for q in qids:
                    s.id_waiters[q] = task
        if deadline < task.timer:
            task.timer = deadline
            self._file(deadline, task)

    def _file(self, deadline: float, task: _Task) -> None:
        fifo = self.fifo
        if not fifo or fifo[-1][0] <= deadline:
            fifo.append((deadline, task))
        else:
            heapq.heappush(self.heap, (deadline, next(self._seq), task))

    def _wake(self, task: _Task) -> None:
        socks = task.socks
        if socks is None:
            return
        task.socks = None
        qids = task.qids
        for s in socks:
            if s.waiter is task:
                s.waiter = None
            if qids is not None:
                for q in qids:
                    if s.id_waiters.get(q) is task:
                        del s.id_waiters[q]
        task.qids = None
        self.ready.append(task)

    def _due(self, deadline: float, task: _Task, now: float) -> None:
        if task.timer != deadline:
            return  # a stale entry: the task has an earlier one, or none
        task.timer = _INF
        if task.socks is None:
            return  # not waiting (ready or done); its next wait files a new entry
        if task.deadline <= now:
            self._wake(task)
        else:
            task.timer = task.deadline
            self._file(task.deadline, task)

    def _next_deadline(self) -> float:
        t = self.fifo[0][0] if self.fifo else _INF
        if self.heap and self.heap[0][0] < t:
            t = self.heap[0][0]
        return t

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
        ready = self.ready
        step = self._step
        while ready:
            step(ready.popleft())
        timeout = min(max_wait, self._next_deadline() - self.now())
        socks = self.socks
        readable = self._readable
        for fd, _ev in self.ep.poll(timeout if timeout > 0.0 else 0.0):
            s = socks.get(fd)
            if s is not None:
                readable(s)
        now = self.now()
        fifo, heap, due = self.fifo, self.heap, self._due
        while fifo and fifo[0][0] <= now:
            d, task = fifo.popleft()
            due(d, task, now)
        while heap and heap[0][0] <= now:
            d, _, task = heapq.heappop(heap)
            due(d, task, now)
        while ready:
            step(ready.popleft())

    def _readable(self, s: _FSock) -> None:
        # One datagram per readiness event: epoll is level-triggered, so a second queued
        # reply is reported again on the next turn. That is cheaper than reading until the
        # EAGAIN exception on every event.
        try:
            if s.proto == "udp":
                if s.server is not None:  # connected: only the server's datagrams arrive
                    reply = parse_reply(s.sk.recv(4096), s.ids, s.server)
                else:
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
        w = s.waiter
        if w is not None and (s.queue or s.error is not None):
            self._wake(w)
        if s.id_waiters:
            if s.error is not None:
                for t in list(s.id_waiters.values()):
                    self._wake(t)
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


def _fsocks(socks: Sequence[Sock]) -> tuple[_FSock, ...]:
    """The loop's own sockets, as a wait names them (a transport only ever hands out these)."""
    out: list[_FSock] = []
    for sock in socks:
        assert isinstance(sock, _FSock)
        out.append(sock)
    return tuple(out)


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
            # The C socket type directly, non-blocking from the start: socket.socket's
            # Python-level __init__ and close, and a setblocking call, cost several
            # microseconds per lookup at these rates.
            with entered(self.netns):
                fresh = [_socket.socket(socket.AF_INET, _SOCK_FLAGS) for _ in range(_POOL_BATCH)]
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
        tail, entry = self._queries.get(qname, qtype, edns)
        qid = self._next_id = (self._next_id + 1) & 0xFFFF
        data = _ID[qid] + tail  # the pre-built query, only its id is new
        sock.ids[qid] = entry
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
        socks = (sock,)
        while True:
            if sock.queue:
                return sock.queue.popleft()
            if sock.error is not None:
                raise TransportError(f"socket error: {sock.error}")
            if self.loop.now() >= deadline:
                return None
            await _wait(socks, deadline)

    async def recv_any(self, socks: Sequence[Sock], deadline: float) -> tuple[Sock, Reply] | None:
        waiting = fs = _fsocks(socks)
        while True:
            for s in fs:
                if s.queue:
                    return s, s.queue.popleft()
                if s.error is not None:
                    raise TransportError(f"socket error: {s.error}")
            if self.loop.now() >= deadline:
                return None
            await _wait(waiting, deadline)

    async def recv_ids(
        self, socks: Sequence[Sock], qids: frozenset[int], deadline: float
    ) -> tuple[Sock, Reply] | None:
        """The reply to one of ``qids`` on any of ``socks``, sockets other lookups share
        (c-ares): replies to the others are parked for them."""
        waiting = fs = _fsocks(socks)
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
            await _wait_ids(waiting, qids, deadline)
