"""Reducing a DNS capture to its unanswered same-port pairs: synthetic frames, no root."""

from __future__ import annotations

import struct

import pytest

from cthcommon.errors import BadInput
from harness.capture.pcap import (
    PAIR_WINDOW_S,
    QTYPE_A,
    QTYPE_AAAA,
    merge,
    read_pcap,
    same_port_pairs,
    write_pcap,
)

POD, DNS = "10.244.1.2", "10.96.0.10"


def _ip(s: str) -> bytes:
    return bytes(int(x) for x in s.split("."))


def _frame(
    src: tuple[str, int], dst: tuple[str, int], dns_id: int, qtype: int, resp: bool
) -> bytes:
    name = b"\x0bhttp-server\x00"
    dns = struct.pack("!HHHHHH", dns_id, 0x8180 if resp else 0x0100, 1, 0, 0, 0)
    dns += name + struct.pack("!HH", qtype, 1)
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(dns), 0) + dns
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, _ip(src[0]), _ip(dst[0])
    )
    return b"\x02" * 6 + b"\x04" * 6 + b"\x08\x00" + ip + udp


def _pcap(
    packets: list[tuple[float, bytes]], *, magic: int = 0xA1B2C3D4, endian: str = "<"
) -> bytes:
    unit = 1e9 if magic == 0xA1B23C4D else 1e6
    out = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 262144, 1)
    for ts, frame in packets:
        sec = int(ts)
        frac = round((ts - sec) * unit)
        out += struct.pack(endian + "IIII", sec, frac, len(frame), len(frame)) + frame
    return out


def q(t: float, port: int, dns_id: int, qtype: int) -> tuple[float, bytes]:
    return t, _frame((POD, port), (DNS, 53), dns_id, qtype, resp=False)


def r(t: float, port: int, dns_id: int, qtype: int) -> tuple[float, bytes]:
    return t, _frame((DNS, 53), (POD, port), dns_id, qtype, resp=True)


RACE = [
    # lost AAAA: a same-port pair, the A answered, the AAAA never
    q(10.0, 40000, 1, QTYPE_A),
    q(10.0001, 40000, 2, QTYPE_AAAA),
    r(10.002, 40000, 1, QTYPE_A),
    # a clean pair on another socket
    q(10.1, 40001, 3, QTYPE_A),
    q(10.1001, 40001, 4, QTYPE_AAAA),
    r(10.102, 40001, 3, QTYPE_A),
    r(10.102, 40001, 4, QTYPE_AAAA),
    # single-request-reopen: one query per socket, one lost, so no pair
    q(10.2, 40002, 5, QTYPE_A),
    q(10.2001, 40003, 6, QTYPE_AAAA),
    r(10.202, 40002, 5, QTYPE_A),
]


def test_only_the_unanswered_same_port_pair_is_kept_with_its_answer() -> None:
    cap = read_pcap(_pcap(RACE))
    assert len(cap.packets) == len(RACE)
    rep = same_port_pairs(cap.packets)
    assert rep.queries == 6
    assert rep.same_port_pairs == 2
    assert rep.unanswered_pairs == 1
    assert rep.unanswered_queries == 1
    kept = read_pcap(write_pcap(cap, rep.keep))
    assert [(p.src[1], p.dst[1], p.dns_id, p.qtype) for p in kept.packets] == [
        (40000, 53, 1, QTYPE_A),
        (40000, 53, 2, QTYPE_AAAA),
        (53, 40000, 1, QTYPE_A),
    ]


def test_queries_further_apart_than_the_window_are_not_a_pair() -> None:
    late = 10.0 + PAIR_WINDOW_S * 3
    rep = same_port_pairs(
        read_pcap(_pcap([q(10.0, 1, 1, QTYPE_A), q(late, 1, 2, QTYPE_AAAA)])).packets
    )
    assert (rep.same_port_pairs, rep.unanswered_pairs) == (0, 0)


def test_a_retry_pair_after_a_timeout_is_a_second_pair() -> None:
    packets = [
        q(1.0, 7, 1, QTYPE_A),
        q(1.0001, 7, 2, QTYPE_AAAA),
        r(1.001, 7, 1, QTYPE_A),
        q(6.0, 7, 3, QTYPE_A),
        q(6.0001, 7, 4, QTYPE_AAAA),
        r(6.001, 7, 3, QTYPE_A),
        r(6.001, 7, 4, QTYPE_AAAA),
    ]
    rep = same_port_pairs(read_pcap(_pcap(packets)).packets)
    assert (rep.same_port_pairs, rep.unanswered_pairs, rep.unanswered_queries) == (2, 1, 1)


@pytest.mark.parametrize(
    ("magic", "endian"), [(0xA1B2C3D4, "<"), (0xA1B2C3D4, ">"), (0xA1B23C4D, "<")]
)
def test_byte_order_and_nanosecond_files_read_alike(magic: int, endian: str) -> None:
    cap = read_pcap(_pcap(RACE, magic=magic, endian=endian))
    assert [round(p.ts, 4) for p in cap.packets] == [round(t, 4) for t, _ in RACE]
    assert same_port_pairs(cap.packets).unanswered_pairs == 1


def test_a_torn_last_record_is_dropped() -> None:
    data = _pcap(RACE)
    cap = read_pcap(data[:-5])
    assert len(cap.records) == len(RACE) - 1


def test_merge_orders_several_pods_by_time() -> None:
    a = read_pcap(_pcap([RACE[0], RACE[2]]))
    b = read_pcap(_pcap([RACE[1]]))
    merged = merge([a, b])
    assert [p.dns_id for p in merged.packets] == [1, 2, 1]
    assert same_port_pairs(merged.packets).unanswered_pairs == 1


def test_what_is_not_a_classic_ethernet_pcap_is_refused() -> None:
    with pytest.raises(BadInput, match="not a classic pcap"):
        read_pcap(b"\x0a\x0d\x0d\x0a" + b"\x00" * 40)  # pcapng
    sll = bytearray(_pcap(RACE))
    sll[20:24] = struct.pack("<I", 113)
    with pytest.raises(BadInput, match="only Ethernet"):
        read_pcap(bytes(sll))


def test_a_sequential_retry_is_not_a_pair_even_within_the_window() -> None:
    # single-request: the AAAA goes out only after the A's answer, so both were never in flight
    packets = [q(1.0, 9, 1, QTYPE_A), r(1.0005, 9, 1, QTYPE_A), q(1.0006, 9, 2, QTYPE_AAAA)]
    assert PAIR_WINDOW_S > 1.0006 - 1.0
    rep = same_port_pairs(read_pcap(_pcap(packets)).packets)
    assert (rep.queries, rep.same_port_pairs, rep.unanswered_pairs) == (2, 0, 0)
