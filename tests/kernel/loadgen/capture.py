"""Packet capture for the resolver fidelity tests: tcpdump in a namespace, and a pcap reader."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dns.message
import dns.rdatatype

from cthcommon.netns import exec_argv
from harness.capture import pcap
from harness.capture.tcpdump import tcpdump_argv


@dataclass(frozen=True)
class Packet:
    t: float
    src: str
    sport: int
    dst: str
    dport: int
    qid: int
    is_reply: bool
    qname: str
    qtype: str
    rcode: int


def read_pcap(path: Path) -> list[Packet]:
    """DNS-over-UDP packets of an Ethernet pcap file (the harness's reader), decoded in full."""
    out = []
    for p in pcap.read_pcap(path.read_bytes()).packets:
        try:
            msg = dns.message.from_wire(p.payload)
        except Exception:
            continue
        q = msg.question[0] if msg.question else None
        out.append(
            Packet(
                t=p.ts,
                src=p.src[0],
                sport=p.src[1],
                dst=p.dst[0],
                dport=p.dst[1],
                qid=msg.id,
                is_reply=p.response,
                qname=q.name.to_text().lower() if q is not None else "",
                qtype=dns.rdatatype.to_text(q.rdtype) if q is not None else "",
                rcode=msg.rcode(),
            )
        )
    return out


@contextmanager
def tcpdump(netns: str, iface: str, path: Path) -> Iterator[Path]:
    """Capture DNS on ``iface`` in ``netns`` into ``path`` for the body; stop by PID."""
    proc = subprocess.Popen(
        exec_argv(netns, tcpdump_argv(path, iface, snaplen=0)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # tcpdump says "listening on ..." on stderr once the socket is attached.
        assert proc.stderr is not None
        end = time.monotonic() + 5
        line = b""
        while time.monotonic() < end and b"listening" not in line:
            line = proc.stderr.readline()
            if not line and proc.poll() is not None:
                raise RuntimeError("tcpdump exited early")
        time.sleep(0.1)
        yield path
        time.sleep(0.2)  # let the last packets reach the file
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def query_pattern(packets: list[Packet], client_ip: str) -> list[tuple[int, str, str]]:
    """Queries the client sent, as (port index by first use, qname, qtype), in wire order."""
    ports: dict[int, int] = {}
    out = []
    for p in packets:
        if p.is_reply or p.src != client_ip:
            continue
        idx = ports.setdefault(p.sport, len(ports))
        out.append((idx, p.qname, p.qtype))
    return out


def describe(packets: list[Packet], client_ip: str) -> str:
    """A readable transcript: time from the first packet, direction, port, name, type."""
    if not packets:
        return "(no packets)"
    t0 = packets[0].t
    rc = {0: "NOERROR", 2: "SERVFAIL", 3: "NXDOMAIN", 5: "REFUSED"}
    lines = []
    for p in packets:
        if p.src == client_ip:
            lines.append(f"  {p.t - t0:8.4f}s  Q  port {p.sport:5d}  {p.qtype:4s} {p.qname}")
        else:
            lines.append(
                f"  {p.t - t0:8.4f}s  R  port {p.dport:5d}  {p.qtype:4s} {p.qname}"
                f"  {rc.get(p.rcode, p.rcode)}"
            )
    return "\n".join(lines)
