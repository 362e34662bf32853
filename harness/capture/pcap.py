"""Reduce a DNS packet capture to its unanswered same-port A/AAAA pairs. Pure: bytes in, out.

A glibc-style lookup sends its A and AAAA queries back to back from one UDP socket; the
insert race loses one of them. In a capture taken inside a client pod that shows as two
queries from the same address and port, the second sent before any answer to the first (both
in flight at once, which is what races), one of which never gets a response with its id. A
sequential retry (A, its answer, then AAAA) is not a pair: its entry already has a reply.
Those pairs (and the responses that did come for them) are what a kernel developer asks to
see, so the bug bundle carries just them: a small pcap that opens in Wireshark or
``tcpdump -r``.

Only classic pcap files (µs or ns timestamps, either byte order) with Ethernet frames are
read: that is what tcpdump writes for a pod's ``eth0``.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from cthcommon.errors import BadInput

LINKTYPE_ETHERNET = 1
MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6),
    b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9),
    b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
QTYPE_A, QTYPE_AAAA = 1, 28
PAIR_WINDOW_S = 0.01  # glibc sends the second query within microseconds of the first


@dataclass(frozen=True)
class DNSPacket:
    index: int  # position of the record in the file
    ts: float
    src: tuple[str, int]
    dst: tuple[str, int]
    dns_id: int
    response: bool
    qtype: int | None
    payload: bytes  # the DNS message, for callers that decode it further


@dataclass(frozen=True)
class Capture:
    header: bytes  # the file's global header, reused for the reduced file
    endian: str
    records: list[bytes]  # each record: its 16-byte header plus the frame
    packets: list[DNSPacket]  # the DNS-over-IPv4/UDP ones among them


@dataclass(frozen=True)
class PairReport:
    queries: int
    same_port_pairs: int
    unanswered_pairs: int
    unanswered_queries: int  # in those pairs
    keep: frozenset[int]  # record indexes of the unanswered pairs' queries and responses


def read_pcap(data: bytes) -> Capture:
    if len(data) < 24 or data[:4] not in MAGIC:
        raise BadInput("not a classic pcap file", field="pcap", value=data[:4].hex())
    endian, unit = MAGIC[data[:4]]
    linktype = struct.unpack(endian + "I", data[20:24])[0] & 0x0FFFFFFF
    if linktype != LINKTYPE_ETHERNET:
        raise BadInput("only Ethernet captures are read", field="linktype", value=linktype)
    records, packets = [], []
    off = 24
    while off + 16 <= len(data):
        sec, frac, incl, _orig = struct.unpack(endian + "IIII", data[off : off + 16])
        frame = data[off + 16 : off + 16 + incl]
        if len(frame) < incl:
            break  # a torn last record (the capture was stopped mid-write)
        records.append(data[off : off + 16 + incl])
        pkt = _dns(len(records) - 1, sec + frac * unit, frame)
        if pkt is not None:
            packets.append(pkt)
        off += 16 + incl
    return Capture(data[:24], endian, records, packets)


def _dns(index: int, ts: float, frame: bytes) -> DNSPacket | None:
    if len(frame) < 14 + 20 + 8 + 12 or frame[12:14] != b"\x08\x00":
        return None
    ip = frame[14:]
    ihl = (ip[0] & 0x0F) * 4
    if ip[0] >> 4 != 4 or ip[9] != 17 or len(ip) < ihl + 8 + 12:
        return None
    frag = struct.unpack("!H", ip[6:8])[0]
    if frag & 0x1FFF:  # a later fragment carries no UDP header
        return None
    src_ip, dst_ip = _ip(ip[12:16]), _ip(ip[16:20])
    sport, dport = struct.unpack("!HH", ip[ihl : ihl + 4])
    if 53 not in (sport, dport):
        return None
    dns = ip[ihl + 8 :]
    dns_id, flags, qdcount = struct.unpack("!HHH", dns[:6])
    return DNSPacket(
        index=index,
        ts=ts,
        src=(src_ip, sport),
        dst=(dst_ip, dport),
        dns_id=dns_id,
        response=bool(flags & 0x8000),
        qtype=_qtype(dns) if qdcount else None,
        payload=bytes(dns),
    )


def _ip(b: bytes) -> str:
    return ".".join(str(x) for x in b)


def _qtype(dns: bytes) -> int | None:
    """The first question's type (the name is skipped label by label; no compression there)."""
    off = 12
    while off < len(dns):
        n = dns[off]
        if n == 0:
            off += 1
            break
        if n & 0xC0:
            off += 2
            break
        off += 1 + n
    if off + 2 > len(dns):
        return None
    return int(struct.unpack("!H", dns[off : off + 2])[0])


def same_port_pairs(packets: list[DNSPacket]) -> PairReport:
    """Find A/AAAA queries in flight together on one socket, and the responses to them."""
    by_socket: dict[tuple[str, int], list[DNSPacket]] = defaultdict(list)
    answers: dict[tuple[tuple[str, int], int], list[DNSPacket]] = defaultdict(list)
    queries = 0
    for p in packets:
        if p.response:
            answers[(p.dst, p.dns_id)].append(p)
        elif p.dst[1] == 53:
            queries += 1
            by_socket[p.src].append(p)
    pairs = unanswered_pairs = unanswered_queries = 0
    keep: set[int] = set()
    for sock, qs in by_socket.items():
        for first, second in _pairs(sorted(qs, key=lambda q: q.ts)):
            got_first = answers.get((sock, first.dns_id), [])
            if any(a.ts <= second.ts for a in got_first):
                continue  # sequential: the first was answered before the second was sent
            pairs += 1
            missing = [q for q in (first, second) if not answers.get((sock, q.dns_id))]
            if not missing:
                continue
            unanswered_pairs += 1
            unanswered_queries += len(missing)
            for q in (first, second):
                keep.add(q.index)
                keep.update(a.index for a in answers.get((sock, q.dns_id), ()))
    return PairReport(queries, pairs, unanswered_pairs, unanswered_queries, frozenset(keep))


def _pairs(qs: list[DNSPacket]) -> Iterator[tuple[DNSPacket, DNSPacket]]:
    i = 0
    while i + 1 < len(qs):
        a, b = qs[i], qs[i + 1]
        if (
            b.ts - a.ts <= PAIR_WINDOW_S
            and {a.qtype, b.qtype} == {QTYPE_A, QTYPE_AAAA}
            and a.dns_id != b.dns_id
        ):
            yield a, b
            i += 2
        else:
            i += 1


def write_pcap(capture: Capture, keep: frozenset[int]) -> bytes:
    """The capture with only the records in ``keep``, in their original order."""
    return capture.header + b"".join(r for i, r in enumerate(capture.records) if i in keep)


def merge(captures: list[Capture]) -> Capture:
    """Several pods' captures as one, records in time order (all must share a header)."""
    if not captures:
        raise BadInput("no capture to merge", field="pcap", value=0)
    first = captures[0]
    unit = MAGIC[first.header[:4]][1]
    tagged = []
    for c in captures:
        if c.header[:4] != first.header[:4] or c.header[20:24] != first.header[20:24]:
            raise BadInput("captures differ in format", field="pcap", value=c.header[:4].hex())
        for r in c.records:
            sec, frac = struct.unpack(first.endian + "II", r[:8])
            tagged.append((sec + frac * unit, r))
    tagged.sort(key=lambda t: t[0])
    records = [r for _, r in tagged]
    merged = first.header + b"".join(records)
    return read_pcap(merged)
