"""NodeLocal DNSCache's node rules, as node-cache installs them (pure).

Queries to the link-local address and their answers are marked NOTRACK in the raw table, so
they never create a conntrack entry (no DNAT, no SNAT, no insert race, no table slot), and
are explicitly accepted in the filter table.
"""

from __future__ import annotations

import ipaddress

LOCAL_IP = "169.254.20.10"
INTERFACE = "nodelocaldns"


def _rules(ip: str) -> tuple[list[str], list[str]]:
    raw: list[str] = []
    flt: list[str] = []
    for proto in ("udp", "tcp"):
        raw += [
            f"-A PREROUTING -d {ip}/32 -p {proto} -m {proto} --dport 53 -j NOTRACK",
            f"-A OUTPUT -s {ip}/32 -p {proto} -m {proto} --sport 53 -j NOTRACK",
            f"-A OUTPUT -d {ip}/32 -p {proto} -m {proto} --dport 53 -j NOTRACK",
        ]
        flt += [
            f"-A INPUT -d {ip}/32 -p {proto} -m {proto} --dport 53 -j ACCEPT",
            f"-A OUTPUT -s {ip}/32 -p {proto} -m {proto} --sport 53 -j ACCEPT",
        ]
    return raw, flt


def render_raw(ip: str = LOCAL_IP) -> str:
    ipaddress.IPv4Address(ip)
    raw, _ = _rules(ip)
    return "*raw\n" + "\n".join(raw) + "\nCOMMIT\n"


def filter_rules(ip: str = LOCAL_IP) -> list[str]:
    ipaddress.IPv4Address(ip)
    return _rules(ip)[1]
