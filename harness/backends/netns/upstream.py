"""A slow "internet" resolver: ``python -m harness.backends.netns.upstream``.

Used instead of dnsmasq when a scenario sets ``cluster.upstream_latency_ms``: answers the
scenario's external names (A; AAAA as NODATA) and NXDOMAIN for the rest, each after the
given delay, so forwarded queries pile up in CoreDNS as they do behind a slow ISP resolver
(seed 000). Runs inside the upstream namespace; never reachable from outside the run.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class _Server(asyncio.DatagramProtocol):
    def __init__(self, names: dict[str, str], delay_s: float) -> None:
        self.names = {n.rstrip(".").lower() + ".": ip for n, ip in names.items()}
        self.delay_s = delay_s
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            q = dns.message.from_wire(data)
        except Exception:
            return
        asyncio.get_running_loop().call_later(self.delay_s, self._answer, q, addr)

    def _answer(self, q: dns.message.Message, addr: tuple[str, int]) -> None:
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        question = q.question[0]
        ip = self.names.get(question.name.to_text().lower())
        if ip is None:
            r.set_rcode(dns.rcode.NXDOMAIN)
        elif question.rdtype == dns.rdatatype.A:
            r.answer.append(dns.rrset.from_text(question.name, 60, "IN", "A", ip))
        if self.transport is not None:
            self.transport.sendto(r.to_wire(), addr)


async def serve(listen: str, names: dict[str, str], delay_s: float) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Server(names, delay_s), local_addr=(listen, 53)
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        transport.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--delay-ms", type=float, required=True)
    ap.add_argument("--name", action="append", default=[], metavar="NAME=IP")
    args = ap.parse_args(argv)
    names = dict(n.split("=", 1) for n in args.name)
    asyncio.run(serve(args.listen, names, args.delay_ms / 1000))


if __name__ == "__main__":
    main()
