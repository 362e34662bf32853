"""Go's pure-Go resolver (``net.Resolver``, cgo off), as a model.

- Search order as glibc (as-is first when ``dots >= ndots``); a trailing dot is absolute.
  Every candidate is tried until one gives addresses (timeouts do not stop the walk).
- A and AAAA in parallel, each from its *own* socket (its own source port); with
  ``single-request`` or ``single-request-reopen`` one after the other.
- Each query: ``attempts`` rounds over the servers (``rotate`` shifts the start), a new
  socket per try, waiting ``timeout`` seconds. ``use-vc``: TCP.
- NXDOMAIN ends that query; SERVFAIL and a lame reply move to the next server.
"""

from __future__ import annotations

from dataclasses import dataclass

from cthcommon.resolvconf import ResolvConf, search_candidates
from loadgen.dns.models.base import (
    FAMILY_QTYPES,
    NOERROR,
    NXDOMAIN,
    Family,
    QType,
    Reply,
    Sock,
    Status,
    Transport,
    pair_status,
)
from loadgen.dns.models.glibc import _lame


@dataclass
class _Query:
    qtype: QType
    tries: list[str]
    sock: Sock | None = None
    qid: int = -1
    deadline: float = 0.0
    reply: Reply | None = None
    done: bool = False


class GoResolver:
    name = "go"

    def __init__(self, conf: ResolvConf, family: Family = "any") -> None:
        self.conf = conf
        self.qtypes = FAMILY_QTYPES[family]  # "ipv4": net.Resolver.LookupIP(ctx, "ip4", ...)
        self._offset = 0

    def _tries(self) -> list[str]:
        servers = list(self.conf.nameservers)
        if self.conf.rotate and servers:
            k = self._offset % len(servers)
            self._offset += 1
            servers = servers[k:] + servers[:k]
        return servers * self.conf.attempts

    async def lookup(self, name: str, t: Transport) -> Status:
        sequential = self.conf.single_request or self.conf.single_request_reopen
        first: Status | None = None
        as_is: Status | None = None
        for qname in search_candidates(name, self.conf):
            if sequential:
                replies = [
                    await self._run([_Query(q, self._tries())], qname, t) for q in self.qtypes
                ]
                got = [r[0] for r in replies]
            else:
                got = await self._run([_Query(q, self._tries()) for q in self.qtypes], qname, t)
            status = pair_status(got)
            if status == "ok":
                return status
            first = first or status
            if qname == name.rstrip(".") + ".":
                as_is = status
        return as_is or first or "error"

    async def _start(self, q: _Query, qname: str, t: Transport) -> None:
        if q.sock is not None:
            t.close(q.sock)
            q.sock = None
        if not q.tries:
            q.done = True
            return
        server = q.tries.pop(0)
        q.sock = await t.open(server, tcp=self.conf.use_vc)
        q.qid = t.send(q.sock, server, qname, q.qtype, edns=True)
        q.deadline = t.now() + self.conf.timeout

    async def _run(self, queries: list[_Query], qname: str, t: Transport) -> list[Reply | None]:
        for q in queries:
            await self._start(q, qname, t)
        try:
            while True:
                live = [q for q in queries if not q.done and q.sock is not None]
                if not live:
                    return [q.reply for q in queries]
                got = await t.recv_any(
                    [q.sock for q in live if q.sock is not None], min(q.deadline for q in live)
                )
                if got is None:
                    for q in live:
                        if t.now() >= q.deadline:
                            await self._start(q, qname, t)
                    continue
                sock, reply = got
                q = next(q for q in live if q.sock is sock)
                if reply.qid != q.qid:
                    continue
                if reply.rcode == NXDOMAIN or (reply.rcode == NOERROR and not _lame(reply)):
                    q.reply, q.done = reply, True
                    if q.sock is not None:
                        t.close(q.sock)
                        q.sock = None
                else:
                    await self._start(q, qname, t)
        finally:
            for q in queries:
                if q.sock is not None:
                    t.close(q.sock)
                    q.sock = None
