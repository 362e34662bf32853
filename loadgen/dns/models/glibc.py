"""glibc's stub resolver (getaddrinfo with AF_UNSPEC, as in glibc 2.36), as a model.

Facts it follows (res_query.c, res_send.c; and measured on this machine, see KERNEL.md):

- Search (``res_search``): a trailing dot makes the name absolute (only it is tried). With
  ``dots >= ndots`` the name is tried as-is first. Then each search domain is tried while the
  answer is NXDOMAIN, NODATA or SERVFAIL; any other failure (a timeout) stops the walk. The
  name as-is is tried last unless it was tried first.
- Send (``res_send``): ``attempts`` rounds over the nameservers (``rotate`` shifts the start).
  One UDP socket per nameserver per call, connected to it and kept across rounds, so a
  retransmission leaves from the same port; a new search candidate opens a new socket.
- The window for nameserver index ``i`` is ``timeout << i``, divided by the number of
  nameservers when ``i > 0``, at least 1 s. It covers the whole exchange, pair included.
- Default: A then AAAA back to back on one socket (one sendmmsg). ``single-request``: AAAA
  only after A's reply, same socket. ``single-request-reopen``: AAAA from a new socket.
- A window that expires after one of the pair was answered switches the process to
  ``single-request`` (RES_SNGLKUP) and resends on the same socket; a second such expiry
  switches to ``single-request-reopen`` and reopens; a third returns what it has. The switch
  is sticky: it lives in the per-thread resolver state, i.e. in this object.
- SERVFAIL, NOTIMP, REFUSED and a NOERROR with no answer, no AA, no RA and no additional
  records count as "try the next server" for that query. A truncated reply moves to TCP.
- ``use-vc``: TCP, both queries written at once on one connection.
"""

from __future__ import annotations

from cthcommon.resolvconf import ResolvConf
from loadgen.dns.models.base import (
    NOERROR,
    NOTIMP,
    PAIR,
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

_NEXT_NS_RCODES = frozenset({SERVFAIL, NOTIMP, REFUSED})


def _lame(r: Reply) -> bool:
    """glibc's "skip this server" test for one reply."""
    if r.rcode in _NEXT_NS_RCODES:
        return True
    return r.rcode == NOERROR and r.ancount == 0 and not r.aa and not r.ra and r.arcount == 0


def send_window(ns_index: int, timeout: int, nscount: int) -> int:
    """Seconds send_dg waits on nameserver ``ns_index`` (0-based) for the whole exchange."""
    seconds = timeout << ns_index
    if ns_index > 0:
        seconds //= nscount
    return max(seconds, 1)


class _Truncated(Exception):
    pass


class GlibcResolver:
    """One thread's resolver state (``_res``) plus the getaddrinfo lookup logic."""

    name = "glibc"

    def __init__(self, conf: ResolvConf, family: Family = "any") -> None:
        self.conf = conf
        self.family = family  # "ipv4": getaddrinfo(AF_INET) asks res_query for A alone
        # RES_SNGLKUP / RES_SNGLKUPREOP: set from resolv.conf, and set for good by a timeout.
        self.single_request = conf.single_request or conf.single_request_reopen
        self.single_request_reopen = conf.single_request_reopen
        self._rotation = 0
        self._answered_lame = False  # within one res_query: a server answered SERVFAIL/REFUSED

    # --- res_search ----------------------------------------------------------------------
    async def lookup(self, name: str, t: Transport) -> Status:
        conf = self.conf
        trailing = name.endswith(".")
        bare = name.rstrip(".")
        dots = bare.count(".")
        tried_as_is = False
        saved: Status | None = None
        got_nodata = got_servfail = False
        status: Status = "nxdomain"
        if dots >= conf.ndots or trailing:
            status = await self.query(bare + ".", t)
            if status == "ok" or trailing:
                return status
            saved = status
            tried_as_is = True
        searched = False
        if conf.search:
            for domain in conf.search:
                searched = True
                status = await self.query(f"{bare}.{domain}.", t)
                if status == "ok":
                    return status
                if status == "nodata":
                    got_nodata = True
                elif status == "servfail":
                    got_servfail = True
                elif status != "nxdomain":
                    # A timeout (TRY_AGAIN without SERVFAIL) or a hard error ends the walk.
                    break
        no_tld = "no-tld-query" in conf.flags
        if (dots or not searched or not no_tld) and not tried_as_is:
            status = await self.query(bare + ".", t)
            if status == "ok":
                return status
        if saved is not None:
            return saved
        if got_nodata:
            return "nodata"
        if got_servfail:
            return "servfail"
        return status

    async def _query_a(self, qname: str, t: Transport) -> Status:
        """AF_INET: one A query per try, ``attempts`` rounds over the servers, ``timeout``
        each; one socket per server for the whole query (no pair, so no race)."""
        socks: dict[str, Sock] = {}
        try:
            for _round in range(self.conf.attempts):
                for server in self.conf.nameservers:
                    if server not in socks:
                        socks[server] = await t.open(server, tcp=self.conf.use_vc)
                    sock = socks[server]
                    qid = t.send(sock, server, qname, "A")
                    deadline = t.now() + self.conf.timeout
                    reply = await t.recv(sock, deadline)
                    while reply is not None and reply.qid != qid:
                        reply = await t.recv(sock, deadline)
                    if reply is not None and not _lame(reply):
                        return pair_status([reply])
            return "timeout"
        finally:
            for sock in socks.values():
                t.close(sock)

    # --- res_send ------------------------------------------------------------------------
    async def query(self, qname: str, t: Transport) -> Status:
        """One res_query: the A/AAAA pair for ``qname`` over all servers and rounds."""
        servers = self.conf.nameservers
        if not servers:
            return "error"
        if self.family == "ipv4":
            return await self._query_a(qname, t)
        n = len(servers)
        offset = 0
        if self.conf.rotate:
            offset = self._rotation % n
            self._rotation += 1
        socks: dict[int, Sock] = {}
        self._answered_lame = False
        try:
            for _round in range(self.conf.attempts):
                for shift in range(n):
                    ns = (shift + offset) % n
                    if self.conf.use_vc:
                        result = await self._send_vc(qname, ns, t)
                    else:
                        try:
                            result = await self._send_dg(qname, ns, socks, t)
                        except _Truncated:
                            result = await self._send_vc(qname, ns, t)
                    if result is not None:
                        return result
            # every server answered SERVFAIL/REFUSED/lame at some point: TRY_AGAIN, but fast
            # and from the servers (load shedding), not a timeout
            return "servfail" if self._answered_lame else "timeout"
        finally:
            for s in socks.values():
                t.close(s)

    async def _send_dg(
        self, qname: str, ns: int, socks: dict[int, Sock], t: Transport
    ) -> Status | None:
        """send_dg: None means "nothing usable, try the next server"."""
        server = self.conf.nameservers[ns]
        seconds = send_window(ns, self.conf.timeout, len(self.conf.nameservers))
        edns = "edns0" in self.conf.flags
        if ns not in socks:
            socks[ns] = await t.open(server)
        while True:  # the "retry" label: a fresh window
            sock = socks[ns]
            deadline = t.now() + seconds
            single = self.single_request
            ids: dict[int, QType] = {t.send(sock, server, qname, "A", edns=edns): "A"}
            if not single:
                ids[t.send(sock, server, qname, "AAAA", edns=edns)] = "AAAA"
            got: dict[QType, Reply | None] = {}
            while len(got) < 2:
                reply = await t.recv(sock, deadline)
                if reply is None:
                    useful = [r for r in got.values() if r is not None]
                    if not useful:
                        return None
                    if not self.single_request:
                        self.single_request = True  # sticky for this process
                        break
                    if not self.single_request_reopen:
                        self.single_request_reopen = True
                        t.close(sock)
                        socks[ns] = await t.open(server)
                        break
                    return pair_status([got.get("A"), got.get("AAAA")])
                qtype = ids.get(reply.qid)
                if qtype is None or qtype in got or reply.qname != qname:
                    continue  # spurious: keep waiting
                if _lame(reply):
                    self._answered_lame = True
                    if any(r is not None for r in got.values()):
                        return pair_status([got.get("A"), got.get("AAAA")])
                    got[qtype] = None  # keep waiting for the other one (not sent yet: waits)
                    continue
                if reply.tc:
                    raise _Truncated
                got[qtype] = reply
                if len(got) == 1 and single:
                    if self.single_request_reopen:
                        t.close(sock)
                        sock = socks[ns] = await t.open(server)
                    ids[t.send(sock, server, qname, "AAAA", edns=edns)] = "AAAA"
            else:
                replies = [got.get("A"), got.get("AAAA")]
                if all(r is None for r in replies):
                    return None  # both lame: next server
                return pair_status(replies)

    async def _send_vc(self, qname: str, ns: int, t: Transport) -> Status | None:
        """send_vc: both queries written on one TCP connection, replies read in any order."""
        server = self.conf.nameservers[ns]
        seconds = send_window(ns, self.conf.timeout, len(self.conf.nameservers))
        deadline = t.now() + seconds
        try:
            sock = await t.open(server, tcp=True)
        except OSError:
            return None
        try:
            ids = {t.send(sock, server, qname, q): q for q in PAIR}
            got: dict[QType, Reply] = {}
            while len(got) < 2:
                reply = await t.recv(sock, deadline)
                if reply is None:
                    return None
                q = ids.get(reply.qid)
                if q is not None:
                    got[q] = reply
            status = pair_status([got.get("A"), got.get("AAAA")])
            return None if status == "servfail" else status
        finally:
            t.close(sock)
