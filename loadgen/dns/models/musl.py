"""musl's stub resolver (``getaddrinfo``, musl 1.2), as a model.

- One UDP socket for the whole exchange; A and AAAA go to *every* nameserver at once.
- Unanswered queries are resent every ``timeout / attempts`` seconds (2.5 s by default) from
  the same socket, until ``timeout`` seconds have passed in total. The first reply wins.
- SERVFAIL is answered by one immediate resend to that server; other error rcodes are ignored
  (the wait goes on for another server's reply).
- ``single-request``, ``single-request-reopen`` and ``use-vc`` are ignored.
- ``family="ipv4"`` (``AF_INET``): only A is sent.
- Search list only when ``dots < ndots`` (and no trailing dot); no as-is first. NXDOMAIN moves
  to the next candidate; NODATA, a timeout or any error ends the lookup.
"""

from __future__ import annotations

from cthcommon.resolvconf import ResolvConf
from loadgen.dns.models.base import (
    FAMILY_QTYPES,
    NOERROR,
    NXDOMAIN,
    SERVFAIL,
    Family,
    QType,
    Reply,
    Status,
    Transport,
)


def musl_candidates(name: str, conf: ResolvConf) -> list[str]:
    bare = name.rstrip(".")
    if name.endswith(".") or bare.count(".") >= conf.ndots:
        return [bare + "."]
    return [*(f"{bare}.{d}." for d in conf.search), bare + "."]


class MuslResolver:
    name = "musl"

    def __init__(self, conf: ResolvConf, family: Family = "any") -> None:
        self.conf = conf
        self.qtypes = FAMILY_QTYPES[family]

    async def lookup(self, name: str, t: Transport) -> Status:
        status: Status = "nxdomain"
        for qname in musl_candidates(name, self.conf):
            status = await self.msend(qname, t)
            if status != "nxdomain":
                return status
        return status

    async def msend(self, qname: str, t: Transport) -> Status:
        servers = self.conf.nameservers
        if not servers:
            return "error"
        total = float(self.conf.timeout)
        interval = total / self.conf.attempts
        sock = await t.open(None)
        try:
            start = t.now()
            end = start + total
            ids: dict[int, QType] = {}
            answers: dict[QType, Reply] = {}
            next_send = start
            servfail_retry = 0
            while t.now() < end and len(answers) < len(self.qtypes):
                if t.now() >= next_send:
                    for q in self.qtypes:
                        if q not in answers:
                            for server in servers:
                                ids[t.send(sock, server, qname, q)] = q
                    next_send = t.now() + interval
                    servfail_retry = 2 * len(self.qtypes)
                reply = await t.recv(sock, min(next_send, end))
                if reply is None:
                    continue
                qt = ids.get(reply.qid)
                if qt is None or qt in answers or reply.qname != qname:
                    continue
                if reply.rcode not in (NOERROR, NXDOMAIN):
                    if reply.rcode == SERVFAIL and servfail_retry > 0:
                        servfail_retry -= 1
                        ids[t.send(sock, reply.server, qname, qt)] = qt
                    continue
                answers[qt] = reply
        finally:
            t.close(sock)
        if len(answers) < len(self.qtypes):
            return "timeout"
        if any(r.rcode == NXDOMAIN for r in answers.values()):
            return "nxdomain"
        return "ok" if any(r.has_answer for r in answers.values()) else "nodata"
