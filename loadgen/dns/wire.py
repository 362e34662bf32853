"""DNS wire helpers shared by the real transports: pre-built queries, header-only parsing."""

from __future__ import annotations

import struct

import dns.flags
import dns.message
import dns.rdatatype

from loadgen.dns.models.base import QType, Reply

_HEADER = struct.Struct("!6H")
_new_reply = tuple.__new__


def build_query(qname: str, qtype: QType, *, edns: bool = False) -> bytes:
    """The wire form of a recursive query for ``qname``/``qtype``, with id 0 (dnspython)."""
    msg = dns.message.make_query(
        qname, dns.rdatatype.from_text(qtype), use_edns=0 if edns else False, payload=1232
    )
    msg.id = 0
    msg.flags = dns.flags.RD
    return msg.to_wire()


class QueryCache:
    """Pre-built queries per name/type: the wire form after its id, and what a reply must
    match (name, type, lower-cased question section), so sending patches in the id only."""

    def __init__(self) -> None:
        self._wire: dict[tuple[str, str, bool], tuple[bytes, tuple[str, QType, bytes]]] = {}

    def get(self, qname: str, qtype: QType, edns: bool) -> tuple[bytes, tuple[str, QType, bytes]]:
        key = (qname, qtype, edns)
        got = self._wire.get(key)
        if got is None:
            wire = build_query(qname, qtype, edns=edns)
            end = 12
            while wire[end]:  # our own query: plain labels, no compression
                end += wire[end] + 1
            got = self._wire[key] = (wire[2:], (qname, qtype, wire[12 : end + 5].lower()))
        return got


def parse_reply(data: bytes, ids: dict[int, tuple[str, QType, bytes]], server: str) -> Reply | None:
    """The reply's header if it answers one of ``ids`` (same id and question); consumes it."""
    if len(data) < 12:
        return None
    qid, flags, _qd, an, _ns, ar = _HEADER.unpack_from(data)
    entry = ids.get(qid)
    if entry is None or not flags & 0x8000:
        return None
    qname, qtype, question = entry
    got = data[12 : 12 + len(question)]
    if got != question and got.lower() != question:
        return None
    del ids[qid]
    # tuple.__new__ directly: a NamedTuple's own __new__ is a Python function.
    return _new_reply(
        Reply,
        (
            qid,
            qname,
            qtype,
            server,
            flags & 0xF,
            an,
            ar,
            bool(flags & 0x0400),
            bool(flags & 0x0080),
            bool(flags & 0x0200),
        ),
    )
