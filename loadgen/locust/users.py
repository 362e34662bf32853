"""Locust users with real-client connection behaviour. Imports Locust: subprocess only.

- :class:`ShortLivedUser`: a new TCP connection per request; it reads the response and
  closes first, so the client keeps TIME_WAIT (what a client without pooling does).
- :class:`ServerClosesUser`: a new connection per request with ``Connection: close``;
  the server closes first.
- :class:`PooledUser`: Locust's ``HttpUser`` (requests + urllib3): each user holds one
  keep-alive connection and reopens it only if it breaks; ``pool_size`` users run, so the
  pool is ``pool_size`` connections.

Every TCP connect is counted in :data:`CONNECTIONS`; "new connections" is measured, not
assumed from the user type.
"""

from __future__ import annotations

import socket
import time
from collections import Counter
from typing import Any, ClassVar

from locust import HttpUser, User, constant, constant_throughput, task
from urllib3 import HTTPConnectionPool, PoolManager
from urllib3.connection import HTTPConnection

from loadgen.http.wire import ProtocolError, ResponseReader, build_request
from loadgen.locust.plan import LocustPlan

RECV_BYTES = 16 * 1024


class ConnectionCounter:
    """Connections this process opened, in total and per epoch second."""

    def __init__(self) -> None:
        self.total = 0
        self.per_s: Counter[int] = Counter()
        self._reported = 0
        self._reported_per_s: Counter[int] = Counter()

    def opened(self) -> None:
        self.total += 1
        self.per_s[int(time.time())] += 1

    def take_delta(self) -> tuple[int, list[list[int]]]:
        """What was opened since the last call (for worker -> master reports)."""
        delta = self.total - self._reported
        per_s = [[s, c - self._reported_per_s[s]] for s, c in self.per_s.items()]
        self._reported = self.total
        self._reported_per_s = Counter(self.per_s)
        return delta, [p for p in per_s if p[1]]


CONNECTIONS = ConnectionCounter()


class _RawSocketUser(User):
    """A new connection per request on a raw (gevent-patched) socket."""

    abstract = True
    server_closes: ClassVar[bool] = False
    address: ClassVar[str] = "127.0.0.1"
    port: ClassVar[int] = 80
    path: ClassVar[str] = "/"
    connect_timeout_s: ClassVar[float] = 2.0
    request_timeout_s: ClassVar[float] = 5.0

    @task
    def get(self) -> None:
        request = build_request(self.address, self.path, close=self.server_closes)
        with self.environment.events.request.measure("GET", self.path) as meta:
            meta["response_length"] = self._exchange(request)

    def _exchange(self, request: bytes) -> int:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.settimeout(self.connect_timeout_s)
            CONNECTIONS.opened()
            s.connect((self.address, self.port))
            s.settimeout(self.request_timeout_s)
            s.sendall(request)
            reader = ResponseReader()
            while True:
                data = s.recv(RECV_BYTES)
                if not data:
                    if not reader.eof():
                        raise ProtocolError("server closed before a whole response")
                    break
                if reader.feed(data) and not self.server_closes:
                    break  # client closes first: TIME_WAIT stays on this side
            if reader.status is None or not 200 <= reader.status < 400:
                raise ProtocolError(f"HTTP status {reader.status}")
            return reader.received
        finally:
            s.close()


class ShortLivedUser(_RawSocketUser):
    """New connection per request; the client closes first."""

    server_closes = False


class ServerClosesUser(_RawSocketUser):
    """New connection per request with ``Connection: close``; the server closes first."""

    server_closes = True


class _CountingConnection(HTTPConnection):
    def connect(self) -> None:
        CONNECTIONS.opened()
        super().connect()


class _CountingPool(HTTPConnectionPool):
    ConnectionCls = _CountingConnection


def counting_pool_manager(maxsize: int = 1) -> PoolManager:
    """A urllib3 pool manager holding at most ``maxsize`` connections per host, counting
    every connect."""
    pm = PoolManager(num_pools=1, maxsize=maxsize, block=True)
    pm.pool_classes_by_scheme = {**pm.pool_classes_by_scheme, "http": _CountingPool}
    return pm


class PooledUser(HttpUser):
    """Keep-alive requests on this user's own connection (a requests session)."""

    abstract = True  # configure() makes the concrete class, with its host
    path: ClassVar[str] = "/"
    timeout: ClassVar[tuple[float, float]] = (2.0, 5.0)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.pool_manager = counting_pool_manager(1)
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]

    @task
    def get(self) -> None:
        self.client.get(self.path, name=self.path, timeout=self.timeout)


USER_CLASSES: dict[str, type[User]] = {
    "short-lived": ShortLivedUser,
    "server-close": ServerClosesUser,
    "pooled": PooledUser,
}


def configure(plan: LocustPlan) -> type[User]:
    """The user class for ``plan``: a concrete subclass carrying its target, timeouts,
    and pacing."""
    base = USER_CLASSES[plan.user]
    rate = plan.per_user_rate()
    attrs: dict[str, Any] = {
        "abstract": False,
        "host": plan.base_url,
        "path": plan.path,
        "wait_time": constant(0) if rate is None else constant_throughput(rate),
    }
    if plan.user == "pooled":
        attrs["timeout"] = (plan.connect_timeout_s, plan.request_timeout_s)
    else:
        attrs.update(
            address=plan.host,
            port=plan.port,
            connect_timeout_s=plan.connect_timeout_s,
            request_timeout_s=plan.request_timeout_s,
        )
    # The same name in master and workers: Locust dispatches users by class name.
    name = {"short-lived": "ShortLived", "server-close": "ServerCloses", "pooled": "Pooled"}
    return type(f"{name[plan.user]}Target", (base,), attrs)
