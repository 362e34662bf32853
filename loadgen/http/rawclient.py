"""A lean asyncio HTTP/1.1 client on raw sockets, for high connection churn.

Each socket is made in its target's pod namespace (``cthcommon.netns.socket_in``), so
one process drives many pods. Requests start open-loop at ``plan.rate`` per second; at most
``plan.max_in_flight`` are outstanding.

- short-lived: connect, GET (keep-alive), read the whole response, close: the client
  closes first and keeps the TIME_WAIT.
- server-close: connect, GET with ``Connection: close``, read to EOF, close.
- pooled: ``plan.pool_size`` keep-alive connections; one is reopened only when it breaks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
from collections.abc import Sequence

from cthcommon.errors import BadInput
from cthcommon.netns import socket_in
from loadgen.http.plan import Accounting, HTTPLoadResult, HTTPPlan, HTTPTarget, due
from loadgen.http.wire import ProtocolError, ResponseReader, build_request

RECV_BYTES = 16 * 1024


class _Failed(Exception):
    """A request failed; ``args[0]`` is the error kind counted in the result."""


def _new_socket(target: HTTPTarget) -> socket.socket:
    if target.netns is not None:
        s = socket_in(target.netns, socket.AF_INET, socket.SOCK_STREAM)
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
    return s


def _error_kind(exc: BaseException, phase: str) -> str:
    if isinstance(exc, _Failed):
        return str(exc.args[0])
    if isinstance(exc, TimeoutError):
        return f"{phase}-timeout"
    if isinstance(exc, ConnectionRefusedError):
        return f"{phase}-refused"
    if isinstance(exc, ConnectionResetError):
        return f"{phase}-reset"
    if isinstance(exc, ProtocolError):
        return "protocol"
    if isinstance(exc, OSError):
        return f"{phase}-oserror-{exc.errno}"
    return f"{phase}-{type(exc).__name__}"


class _Run:
    def __init__(self, targets: Sequence[HTTPTarget], plan: HTTPPlan) -> None:
        self.targets = list(targets)
        self.plan = plan
        self.acc = Accounting()
        self.loop = asyncio.get_running_loop()
        self.t0 = time.monotonic()
        self.fill_s: float | None = None  # when the fill (if any) had been issued
        self.requests = [
            build_request(t.host_header, t.path, close=plan.mode == "server-close")
            for t in self.targets
        ]

    def now(self) -> float:
        return time.monotonic() - self.t0

    async def connect(self, i: int) -> socket.socket:
        target = self.targets[i]
        s = _new_socket(target)
        self.acc.connection_opened(self.now())
        try:
            async with asyncio.timeout(self.plan.connect_timeout_s):
                await self.loop.sock_connect(s, (target.address, target.port))
        except BaseException:
            s.close()
            raise
        return s

    async def exchange(self, s: socket.socket, i: int) -> ResponseReader:
        """Send one request and read one response (to EOF when the server closes)."""
        await self.loop.sock_sendall(s, self.requests[i])
        reader = ResponseReader()
        while True:
            data = await self.loop.sock_recv(s, RECV_BYTES)
            if not data:
                if not reader.eof():
                    raise _Failed("closed-early")
                break
            if reader.feed(data) and self.plan.mode != "server-close":
                break
        if reader.status is None or not 200 <= reader.status < 400:
            raise _Failed(f"status-{reader.status}")
        return reader

    async def one_shot(self, i: int) -> None:
        start = self.now()
        phase = "connect"
        error: str | None = None
        s: socket.socket | None = None
        try:
            s = await self.connect(i)
            phase = "request"
            async with asyncio.timeout(self.plan.request_timeout_s):
                await self.exchange(s, i)
        except (OSError, ProtocolError, _Failed) as e:
            error = _error_kind(e, phase)
        finally:
            if s is not None:
                s.close()
        end = self.now()
        self.acc.request_done(end, (end - start) * 1000.0, error)

    async def one_shot_loop(self) -> None:
        slots = asyncio.Semaphore(self.plan.max_in_flight)
        tasks: set[asyncio.Task[None]] = set()

        async def guarded(i: int) -> None:
            try:
                await self.one_shot(i)
            finally:
                slots.release()

        issued = 0
        n = len(self.targets)
        fill = self.plan.fill_connections
        # Fill first, at maximum churn (only max_in_flight limits it); then pace from there.
        while issued < fill and self.now() < self.plan.duration_s:
            await slots.acquire()
            t = asyncio.create_task(guarded(issued % n))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            issued += 1
        self.fill_s = self.now() if fill else None
        hold_from = self.fill_s or 0.0
        while True:
            elapsed = self.now()
            if elapsed >= self.plan.duration_s:
                break
            target_count = fill + due(elapsed - hold_from, self.plan.rate, self.plan.duration_s)
            while issued < target_count and self.now() < self.plan.duration_s:
                await slots.acquire()
                t = asyncio.create_task(guarded(issued % n))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
                issued += 1
            next_at = hold_from + (issued - fill + 1) / self.plan.rate
            await asyncio.sleep(max(0.0, min(next_at, self.plan.duration_s) - self.now()))
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def pooled_loop(self) -> None:
        queue: asyncio.Queue[float] = asyncio.Queue(maxsize=self.plan.max_in_flight)
        n = len(self.targets)
        workers = [
            asyncio.create_task(self.pool_worker(k % n, queue)) for k in range(self.plan.pool_size)
        ]
        issued = 0
        try:
            while True:
                elapsed = self.now()
                if elapsed >= self.plan.duration_s:
                    break
                target_count = due(elapsed, self.plan.rate, self.plan.duration_s)
                while issued < target_count:
                    await queue.put(self.now())
                    issued += 1
                next_at = (issued + 1) / self.plan.rate
                await asyncio.sleep(max(0.0, min(next_at, self.plan.duration_s) - self.now()))
            await queue.join()
        finally:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def pool_worker(self, i: int, queue: asyncio.Queue[float]) -> None:
        s: socket.socket | None = None
        try:
            while True:
                await queue.get()
                start = self.now()
                phase = "connect"
                error: str | None = None
                try:
                    if s is None:
                        s = await self.connect(i)
                    phase = "request"
                    async with asyncio.timeout(self.plan.request_timeout_s):
                        reader = await self.exchange(s, i)
                    if not reader.keep_alive:
                        s.close()
                        s = None
                except (OSError, ProtocolError, _Failed) as e:
                    error = _error_kind(e, phase)
                    if s is not None:
                        s.close()
                        s = None
                end = self.now()
                self.acc.request_done(end, (end - start) * 1000.0, error)
                queue.task_done()
        finally:
            if s is not None:
                s.close()


async def run_http_load(targets: Sequence[HTTPTarget], plan: HTTPPlan) -> HTTPLoadResult:
    """Drive ``plan`` against ``targets`` (round-robin) and return what was measured."""
    if not targets:
        raise BadInput("at least one target is needed", field="targets", value=[])
    run = _Run(targets, plan)
    if plan.mode == "pooled":
        await run.pooled_loop()
    else:
        await run.one_shot_loop()
    res = HTTPLoadResult.from_accounting(plan.mode, run.acc, run.now())
    return dataclasses.replace(res, fill_s=run.fill_s)


async def run_http_burst(targets: Sequence[HTTPTarget], plan: HTTPPlan, n: int) -> HTTPLoadResult:
    """Make ``n`` one-shot requests as fast as ``plan.max_in_flight`` allows (a warm-up's
    real connections: each leaves the entry its mode leaves, e.g. TIME_WAIT)."""
    if not targets:
        raise BadInput("at least one target is needed", field="targets", value=[])
    if plan.mode == "pooled":
        raise BadInput("a burst opens one-shot connections", field="plan.mode", value=plan.mode)
    run = _Run(targets, plan)
    slots = asyncio.Semaphore(plan.max_in_flight)
    count = len(run.targets)

    async def one(i: int) -> None:
        async with slots:
            await run.one_shot(i % count)

    await asyncio.gather(*(one(i) for i in range(max(0, n))))
    return HTTPLoadResult.from_accounting(plan.mode, run.acc, run.now())


def run_http_load_sync(targets: Sequence[HTTPTarget], plan: HTTPPlan) -> HTTPLoadResult:
    """:func:`run_http_load` for callers without an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run_http_load(targets, plan))
    raise BadInput("run_http_load_sync was called inside a running event loop; await run_http_load")
