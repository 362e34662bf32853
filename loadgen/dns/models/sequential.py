"""A plain one-socket-per-query client (what dnspython's resolver does), as a model.

A then AAAA, one after the other, each from a new socket; ``attempts`` rounds over the
servers with ``timeout`` seconds per try (a new socket each try). Search order as glibc; a
timeout ends the walk. It never sends two queries from one port, so it never meets the race.
"""

from __future__ import annotations

from cthcommon.resolvconf import ResolvConf, search_candidates
from loadgen.dns.models.base import (
    FAMILY_QTYPES,
    Family,
    QType,
    Reply,
    Status,
    Transport,
    pair_status,
)
from loadgen.dns.models.glibc import _lame


class SequentialResolver:
    name = "sequential"

    def __init__(self, conf: ResolvConf, family: Family = "any") -> None:
        self.conf = conf
        self.qtypes = FAMILY_QTYPES[family]

    async def lookup(self, name: str, t: Transport) -> Status:
        status: Status = "nxdomain"
        for qname in search_candidates(name, self.conf):
            got = [await self._one(qname, q, t) for q in self.qtypes]
            status = pair_status(got)
            if status in ("ok", "timeout"):
                return status
        return status

    async def _one(self, qname: str, qtype: QType, t: Transport) -> Reply | None:
        for _round in range(self.conf.attempts):
            for server in self.conf.nameservers:
                sock = await t.open(server, tcp=self.conf.use_vc)
                try:
                    qid = t.send(sock, server, qname, qtype)
                    deadline = t.now() + self.conf.timeout
                    while True:
                        reply = await t.recv(sock, deadline)
                        if reply is None or reply.qid == qid:
                            break
                    if reply is not None and not _lame(reply):
                        return reply
                finally:
                    t.close(sock)
        return None
