"""c-ares (1.34, the version Node.js 20 bundles) as a model: a resolver that keeps its port.

One model object is one c-ares *channel* (one client process): its UDP connections, its
servers' failure counts and latency metrics live across lookups. Facts it follows
(``ares_process.c``, ``ares_close_sockets.c``, ``ares_metrics.c``; and measured on this machine
by capture against Node's bundled c-ares, see KERNEL.md and the capture test):

- A query goes out on the server's existing UDP connection when there is one: concurrent
  lookups, and A and AAAA of one lookup, share one socket (one source port). A connection
  with no query outstanding is closed at the next processing pass unless the channel has
  ``ARES_FLAG_STAYOPEN``; so back-to-back lookups that never overlap each get a new port,
  while a client that always has a query in flight keeps its port for as long as it does.
- While the server has failures (a timeout, or SERVFAIL/REFUSED/NOTIMP without
  ``ARES_FLAG_NOCHECKRESP``) every query opens a new connection (measured: each retry after
  a timeout leaves from a new port), and idle connections are closed; an answer resets it.
  ``udp_max_queries`` (0: unlimited) caps the queries one connection carries.
- Timeout of a try: the server's average latency over the most recent metrics bucket with at
  least 3 answered queries (NOERROR or NXDOMAIN), times 5; before that, the channel's timeout
  (``timeout:`` of resolv.conf in seconds, else 2000 ms). Bounded to [250 ms, 5000 ms]. Try
  ``k`` waits ``timeout << (k // nservers)``, from the second round on shortened by a random
  fraction in [0, 0.5) (never below the timeout). ``tries`` (``attempts:``, default 3) rounds
  over the servers; the first server with the fewest failures is asked (``rotate``: a random
  one of those).
- Timeouts are acted on when the embedder next calls into c-ares: at once for an embedder that
  sleeps until ``ares_timeout()`` (gRPC, Envoy), but Node.js runs a 1 s timer (``tick_s``) from
  the moment its channel opens a socket, so there a try ends at the first tick past its
  deadline.
- A lookup is ``ares_getaddrinfo`` (AF_UNSPEC: A and AAAA at once on the shared socket;
  ``family="ipv4"``: A alone). Search list as glibc's (as-is first when ``dots >= ndots``); a
  candidate with no address moves to the next on NXDOMAIN or NODATA, sent from inside the
  processing pass that ended the previous one, so before idle sockets are closed: the whole
  walk stays on one port. A timeout ends the lookup.
  resolv.conf options c-ares 1.34 acts on: ``ndots``, ``timeout``, ``attempts``, ``rotate``;
  ``single-request``, ``single-request-reopen`` and ``use-vc`` do not change it here. The
  parsed resolv.conf cannot tell ``timeout:5`` or ``attempts:2`` from no option (glibc's
  defaults): those two values read as unset (c-ares' 2000 ms, 3 tries).
- Measured differences between c-ares versions: Node's 1.34.6 sends every retry after a
  timeout from a new port (the model does this); pycares' 1.34.9 puts the retries of one
  processing pass on one new socket, and reuses a socket opened for another query's retry.
  The library's query cache (on by default, off in Node) is not modelled: every lookup asks.
- A retry keeps its query ID in c-ares; the model's transport gives each send a new ID (the
  reply to an earlier try of the same query is still accepted).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from cthcommon.resolvconf import DEFAULT_ATTEMPTS, DEFAULT_TIMEOUT, ResolvConf, search_candidates
from loadgen.dns.models.base import (
    FAMILY_QTYPES,
    NOERROR,
    NOTIMP,
    NXDOMAIN,
    REFUSED,
    SERVFAIL,
    Family,
    QType,
    Reply,
    Sock,
    Status,
    Transport,
    pair_status,
)

DEFAULT_TIMEOUT_MS = 2000  # ares_private.h DEFAULT_TIMEOUT
DEFAULT_TRIES = 3  # ares_private.h DEFAULT_TRIES
MIN_TIMEOUT_MS = 250  # ares_metrics.c
MAX_TIMEOUT_MS = 5000
AVG_TIMEOUT_MULTIPLIER = 5
MIN_COUNT_FOR_AVERAGE = 3
# ares_metrics.c's buckets: 1 minute, 15 minutes, 1 hour, 1 day, since the channel started
BUCKET_S: tuple[float | None, ...] = (60.0, 900.0, 3600.0, 86400.0, None)
_LAME = frozenset({SERVFAIL, NOTIMP, REFUSED})


@dataclass(frozen=True)
class Embedding:
    """How the program around c-ares sets it up and drives it."""

    tries: int | None = None  # ARES_OPT_TRIES; None: resolv.conf attempts, else 3
    tick_s: float | None = None  # timeouts acted on every tick_s (Node: 1 s); None: at once
    stay_open: bool = False  # ARES_FLAG_STAYOPEN
    check_resp: bool = True  # False: ARES_FLAG_NOCHECKRESP (SERVFAIL... end the query)
    udp_max_queries: int = 0


LIBRARY = Embedding()  # c-ares' own defaults, driven by ares_timeout()
NODE = Embedding(tries=4, tick_s=1.0, check_resp=False)  # Node.js dns.Resolver (cares_wrap)


def try_timeout_ms(base_ms: int, try_count: int, nservers: int, jitter: float) -> int:
    """How long try ``try_count`` (0-based) waits: ``ares_calc_query_timeout``. ``jitter`` in
    [0, 0.5) is the random shortening applied from the second round on."""
    rounds = try_count // max(nservers, 1)
    plus = base_ms << rounds
    if rounds > 0:
        plus -= int(plus * jitter)
    return max(plus, base_ms)


@dataclass
class _Bucket:
    ts: int = -1
    total_ms: int = 0
    count: int = 0
    prev_ts: int = -1
    prev_total_ms: int = 0
    prev_count: int = 0


def _bucket_ts(period: float | None, now: float, previous: bool) -> int:
    if period is None:
        return 0 if previous else 1
    if previous:
        return int((now - period) // period) if now > period else 0
    return int(now // period)


@dataclass
class _Server:
    ip: str
    index: int
    failures: int = 0
    buckets: list[_Bucket] = field(default_factory=lambda: [_Bucket() for _ in BUCKET_S])

    def record(self, latency_s: float, now: float) -> None:
        ms = max(int(latency_s * 1000), 1)
        for period, b in zip(BUCKET_S, self.buckets, strict=True):
            ts = _bucket_ts(period, now, False)
            if ts != b.ts:
                b.prev_ts, b.prev_total_ms, b.prev_count = b.ts, b.total_ms, b.count
                b.ts, b.total_ms, b.count = ts, 0, 0
            b.total_ms += ms
            b.count += 1

    def timeout_ms(self, initial_ms: int, now: float) -> int:
        """``ares_metrics_server_timeout``."""
        t = 0
        for period, b in zip(BUCKET_S, self.buckets, strict=True):
            if _bucket_ts(period, now, False) == b.ts and b.count >= MIN_COUNT_FOR_AVERAGE:
                t = b.total_ms // b.count
            elif _bucket_ts(period, now, True) == b.prev_ts and b.prev_count >= (
                MIN_COUNT_FOR_AVERAGE
            ):
                t = b.prev_total_ms // b.prev_count
            else:
                continue
            t *= AVG_TIMEOUT_MULTIPLIER
            break
        if t == 0:
            t = initial_ms
        return min(max(t, MIN_TIMEOUT_MS), MAX_TIMEOUT_MS)


@dataclass
class _Conn:
    sock: Sock
    server: _Server
    outstanding: int = 0
    total: int = 0


@dataclass
class _Query:
    qname: str
    qtype: QType
    qids: set[int] = field(default_factory=set)
    tries: int = 0
    conn: _Conn | None = None
    sent_at: float = 0.0
    deadline: float = 0.0
    reply: Reply | None = None
    lame: Reply | None = None  # the last SERVFAIL/NOTIMP/REFUSED, if it ends that way
    done: bool = False


class CAresResolver:
    """One c-ares channel: connections, server state and metrics kept across lookups."""

    name = "c-ares"

    def __init__(
        self,
        conf: ResolvConf,
        family: Family = "any",
        embedding: Embedding = LIBRARY,
        rng: random.Random | None = None,
    ) -> None:
        self.conf = conf
        self.qtypes = FAMILY_QTYPES[family]
        self.embedding = embedding
        self.rng = rng or random.Random()
        self.servers = [_Server(ip, i) for i, ip in enumerate(conf.nameservers)]
        self.conns: list[_Conn] = []
        self.tick_origin: float | None = None
        self.t_start: float | None = None  # the channel's clock origin (metrics buckets)
        # resolv.conf's timeout:/attempts: when given (the parser's defaults are glibc's)
        self.initial_ms = (
            conf.timeout * 1000 if conf.timeout != DEFAULT_TIMEOUT else DEFAULT_TIMEOUT_MS
        )
        attempts = conf.attempts if conf.attempts != DEFAULT_ATTEMPTS else DEFAULT_TRIES
        self.tries = embedding.tries or attempts

    # --- lookups -------------------------------------------------------------------------
    async def lookup(self, name: str, t: Transport) -> Status:
        if not self.servers:
            return "error"
        status: Status = "nxdomain"
        try:
            for qname in search_candidates(name, self.conf):
                queries = [_Query(qname, q) for q in self.qtypes]
                await self._resolve(queries, t)
                status = pair_status([q.reply for q in queries])
                if status not in ("nxdomain", "nodata"):
                    return status
            return status
        finally:
            # The pass that ended the lookup closes what went idle. ares_getaddrinfo sends
            # the next candidate from the callback, inside that pass: on the same socket.
            self._cleanup(t)

    # --- the channel -----------------------------------------------------------------------
    def _clock(self, t: Transport) -> float:
        if self.t_start is None:
            self.t_start = t.now()
        return t.now() - self.t_start

    def _pick_server(self) -> _Server:
        best = min(s.failures for s in self.servers)
        good = [s for s in self.servers if s.failures == best]
        if self.conf.rotate:
            return good[self.rng.randrange(len(good))]
        return good[0]

    def _cleanup(self, t: Transport) -> None:
        """``ares_check_cleanup_conns``: close idle connections that may not stay."""
        e = self.embedding
        for c in list(self.conns):
            if c.outstanding:
                continue
            spent = e.udp_max_queries > 0 and c.total >= e.udp_max_queries
            if not e.stay_open or c.server.failures > 0 or spent:
                self.conns.remove(c)
                t.close(c.sock)
        if not self.conns:
            self.tick_origin = None  # Node stops its timer with its last socket

    async def _conn_for(self, server: _Server, t: Transport) -> _Conn:
        """``ares_fetch_connection``, else a new connection."""
        e = self.embedding
        if server.failures == 0:
            for c in self.conns:
                if c.server is server and not (
                    e.udp_max_queries > 0 and c.total >= e.udp_max_queries
                ):
                    return c
        if not self.conns and self.tick_origin is None:
            self.tick_origin = t.now()
        c = _Conn(await t.open(server.ip), server)
        self.conns.insert(0, c)
        return c

    async def _send(self, q: _Query, t: Transport) -> None:
        server = self._pick_server()
        c = await self._conn_for(server, t)
        q.qids.add(t.send(c.sock, server.ip, q.qname, q.qtype))
        c.outstanding += 1
        c.total += 1
        q.conn = c
        now = t.now()
        q.sent_at = now
        base = server.timeout_ms(self.initial_ms, self._clock(t))
        ms = try_timeout_ms(base, q.tries, len(self.servers), self.rng.random() * 0.5)
        q.deadline = now + ms / 1000.0

    def _acted_on(self, deadline: float) -> float:
        """When the embedder notices ``deadline`` has passed (its next tick, for Node)."""
        tick = self.embedding.tick_s
        if tick is None or self.tick_origin is None:
            return deadline
        k = -(-(deadline - self.tick_origin) // tick)  # ceil
        return self.tick_origin + max(k, 0) * tick

    def _detach(self, q: _Query) -> None:
        if q.conn is not None:
            q.conn.outstanding -= 1
            q.conn = None

    async def _retry_or_end(self, q: _Query, t: Transport) -> None:
        q.tries += 1
        if q.tries < self.tries * len(self.servers):
            await self._send(q, t)
        else:
            q.reply, q.done = q.lame, True  # ARES_ETIMEOUT, or the last error rcode

    async def _resolve(self, queries: list[_Query], t: Transport) -> None:
        for q in queries:
            await self._send(q, t)
        try:
            while True:
                live = [q for q in queries if not q.done]
                if not live:
                    return
                first = min(live, key=lambda q: q.deadline)
                wake = self._acted_on(first.deadline)
                got = await self._wait(live, wake, t)
                if got is None:
                    # a processing pass: close idle connections, then time out what expired
                    now = t.now()
                    self._cleanup(t)
                    for q in live:
                        if self._acted_on(q.deadline) <= now:
                            assert q.conn is not None
                            q.conn.server.failures += 1
                            self._detach(q)
                            await self._retry_or_end(q, t)
                    self._cleanup(t)
                    continue
                q, reply = got
                self._answer(q, reply, t)
                if not q.done:
                    await self._retry_or_end(q, t)
                if any(not x.done for x in queries):
                    self._cleanup(t)
        finally:
            for q in queries:
                self._detach(q)

    async def _wait(
        self, live: list[_Query], until: float, t: Transport
    ) -> tuple[_Query, Reply] | None:
        """The next reply to one of ``live`` on its connection, or None at ``until``."""
        by_sock: dict[int, list[_Query]] = {}
        socks: list[Sock] = []
        for q in live:
            assert q.conn is not None
            key = id(q.conn.sock)
            if key not in by_sock:
                by_sock[key] = []
                socks.append(q.conn.sock)
            by_sock[key].append(q)
        ids = {qid: q for q in live for qid in q.qids}
        got = await t.recv_ids(socks, frozenset(ids), until)
        if got is None:
            return None
        _sock, reply = got
        return ids[reply.qid], reply

    def _answer(self, q: _Query, reply: Reply, t: Transport) -> None:
        """``process_answer``: an answer ends the query; a lame rcode (unless NOCHECKRESP)
        marks the server failed and leaves the query to be retried."""
        assert q.conn is not None
        server = q.conn.server
        self._detach(q)
        if reply.rcode in _LAME and self.embedding.check_resp:
            server.failures += 1
            q.lame = reply
            return
        if reply.rcode in (NOERROR, NXDOMAIN):
            server.record(t.now() - q.sent_at, self._clock(t))
        server.failures = 0
        q.reply, q.done = reply, True
