"""The real asyncio transport: sockets created inside a pod's network namespace.

For async callers that run a few lookups (the capture test, diagnostics). The load engine uses
the leaner :mod:`loadgen.dns.fastloop`, which shares the wire code and the models.

Sockets are made with :func:`harness.kernel.netns.socket_in`, a batch at a time (a fresh,
unbound UDP socket gets its source port only when it is connected, so making it early
changes nothing on the wire). Queries are pre-built wire messages from dnspython
(``dns.message.make_query(...).to_wire()``) with only the id patched per send. Replies are
read with one ``add_reader`` callback per socket; only their 12-byte header and echoed
question are looked at, which is all a stub resolver's send loop looks at.
"""

from __future__ import annotations

import asyncio
import random
import socket
from collections import deque
from collections.abc import Sequence

from harness.kernel.netns import entered, socket_in
from loadgen.dns.models.base import QType, Reply, Sock, TransportError
from loadgen.dns.wire import QueryCache, build_query, parse_reply

__all__ = ["AsyncioTransport", "build_query"]
_POOL_BATCH = 64
DNS_PORT = 53


class _Sock(Sock):
    __slots__ = ("error", "ids", "queue", "rbuf", "sk", "waiter")

    def __init__(self, sk: socket.socket, port: int, proto: str, server: str | None) -> None:
        super().__init__(port, "tcp" if proto == "tcp" else "udp", server)
        self.sk = sk
        self.ids: dict[int, tuple[str, QType, bytes]] = {}
        self.queue: deque[Reply] = deque()
        self.waiter: asyncio.Future[None] | None = None
        self.error: OSError | None = None
        self.rbuf = b""


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class AsyncioTransport:
    """Client sockets in network namespace ``netns``, driven by the running event loop."""

    def __init__(self, netns: str, *, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.netns = netns
        self.loop = loop or asyncio.get_running_loop()
        self._pool: list[socket.socket] = []
        self._queries = QueryCache()
        self._next_id = random.getrandbits(16)
        self.sockets_opened = 0

    def now(self) -> float:
        return self.loop.time()

    # --- sockets -------------------------------------------------------------------------
    def _udp_socket(self, family: int) -> socket.socket:
        if family != socket.AF_INET:
            return socket_in(self.netns, family, socket.SOCK_DGRAM)
        if not self._pool:
            with entered(self.netns):
                fresh = [
                    socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(_POOL_BATCH)
                ]
            for s in fresh:
                s.setblocking(False)
            fresh.reverse()
            self._pool = fresh
        return self._pool.pop()

    async def open(self, server: str | None, *, tcp: bool = False) -> Sock:
        family = socket.AF_INET6 if server and ":" in server else socket.AF_INET
        try:
            if tcp:
                if server is None:
                    raise TransportError("a TCP socket needs a server")
                sk = socket_in(self.netns, family, socket.SOCK_STREAM)
                try:
                    await self.loop.sock_connect(sk, (server, DNS_PORT))
                except OSError:
                    sk.close()
                    raise
            else:
                sk = self._udp_socket(family)
                if server is not None:
                    sk.connect((server, DNS_PORT))
                else:
                    sk.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
        except OSError as e:
            raise TransportError(f"open {'tcp' if tcp else 'udp'} to {server}: {e}") from e
        s = _Sock(sk, sk.getsockname()[1], "tcp" if tcp else "udp", server)
        self.loop.add_reader(sk.fileno(), self._readable, s)
        self.sockets_opened += 1
        return s

    def close(self, sock: Sock) -> None:
        assert isinstance(sock, _Sock)
        if sock.sk.fileno() >= 0:
            self.loop.remove_reader(sock.sk.fileno())
            sock.sk.close()

    def close_pool(self) -> None:
        for s in self._pool:
            s.close()
        self._pool.clear()

    # --- queries -------------------------------------------------------------------------
    def send(self, sock: Sock, server: str, qname: str, qtype: QType, *, edns: bool = False) -> int:
        assert isinstance(sock, _Sock)
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

    # --- replies -------------------------------------------------------------------------
    def _readable(self, s: _Sock) -> None:
        while True:
            try:
                if s.proto == "udp":
                    data, addr = s.sk.recvfrom(4096)
                    self._datagram(s, data, addr[0])
                    continue
                chunk = s.sk.recv(65536)
                if not chunk:
                    raise ConnectionResetError("connection closed by server")
                s.rbuf += chunk
                while len(s.rbuf) >= 2:
                    n = int.from_bytes(s.rbuf[:2], "big")
                    if len(s.rbuf) < 2 + n:
                        break
                    msg, s.rbuf = s.rbuf[2 : 2 + n], s.rbuf[2 + n :]
                    self._datagram(s, msg, s.server or "")
            except (BlockingIOError, InterruptedError):
                break
            except OSError as e:
                s.error = e
                self.loop.remove_reader(s.sk.fileno())
                break
        if s.waiter is not None and (s.queue or s.error is not None):
            _wake(s.waiter)

    def _datagram(self, s: _Sock, data: bytes, src: str) -> None:
        reply = parse_reply(data, s.ids, src)
        if reply is not None:
            s.queue.append(reply)

    async def recv(self, sock: Sock, deadline: float) -> Reply | None:
        got = await self.recv_any((sock,), deadline)
        return None if got is None else got[1]

    async def recv_any(self, socks: Sequence[Sock], deadline: float) -> tuple[Sock, Reply] | None:
        loop = self.loop
        while True:
            for sock in socks:
                assert isinstance(sock, _Sock)
                if sock.queue:
                    return sock, sock.queue.popleft()
                if sock.error is not None:
                    raise TransportError(f"socket error: {sock.error}")
            if loop.time() >= deadline:
                return None
            fut: asyncio.Future[None] = loop.create_future()
            for sock in socks:
                assert isinstance(sock, _Sock)
                sock.waiter = fut
            timer = loop.call_at(deadline, _wake, fut)
            try:
                await fut
            finally:
                timer.cancel()
                for sock in socks:
                    assert isinstance(sock, _Sock)
                    sock.waiter = None
