"""Generate the nat/filter rules kube-proxy's iptables mode installs on a node.

Chain layout (as kube-proxy builds it):

- ``PREROUTING``/``OUTPUT`` jump to ``KUBE-SERVICES``;
- ``KUBE-SERVICES`` matches each ClusterIP:port and jumps to the service's ``KUBE-SVC-<hash>``;
- ``KUBE-SVC-<hash>`` marks for masquerade (traffic from outside the cluster CIDR, or all
  traffic with ``--masquerade-all``), then picks an endpoint: endpoint *i* of *N* is chosen
  with ``statistic --mode random --probability 1/(N-i)``, the last one unconditionally;
- ``KUBE-SEP-<hash>`` marks hairpin traffic and DNATs to the endpoint;
- ``POSTROUTING`` -> ``KUBE-POSTROUTING`` MASQUERADEs packets carrying mark 0x4000.

The output is fed to ``iptables-restore --noflush`` in one call, so a node's rules change
atomically.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from dataclasses import dataclass, field

from harness.errors import BadInput

MASQ_MARK = "0x4000/0x4000"
PROTOCOLS = ("tcp", "udp")


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int


@dataclass(frozen=True)
class ServicePort:
    namespace: str
    name: str
    port_name: str
    protocol: str
    cluster_ip: str
    port: int
    endpoints: tuple[Endpoint, ...] = field(default=())

    @property
    def svc_port_name(self) -> str:
        return f"{self.namespace}/{self.name}:{self.port_name}"

    def validate(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise BadInput(
                "unsupported protocol",
                field="protocol",
                value=self.protocol,
                allowed=list(PROTOCOLS),
            )
        try:
            ipaddress.IPv4Address(self.cluster_ip)
        except ValueError:
            raise BadInput(
                "ClusterIP must be IPv4", field="cluster_ip", value=self.cluster_ip
            ) from None
        for p in (self.port, *(e.port for e in self.endpoints)):
            if not 0 < p < 65536:
                raise BadInput("port out of range", field="port", value=p, allowed="1..65535")


def _hash(text: str) -> str:
    # kube-proxy: base32 of the SHA-256 of the name, first 16 characters
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def svc_chain(sp: ServicePort) -> str:
    return "KUBE-SVC-" + _hash(sp.svc_port_name + sp.protocol)


def sep_chain(sp: ServicePort, ep: Endpoint) -> str:
    return "KUBE-SEP-" + _hash(sp.svc_port_name + sp.protocol + f"{ep.ip}:{ep.port}")


def probability(i: int, n: int) -> str:
    """kube-proxy's probability for endpoint i of n, printed with 10 decimals."""
    return f"{1.0 / (n - i):.10f}"


def render_nat(
    services: list[ServicePort],
    *,
    cluster_cidr: str,
    masquerade_all: bool = False,
    pod_masquerade: bool = True,
) -> str:
    """The node's whole nat table. ``pod_masquerade`` adds the CNI's rule (ip-masq-agent
    style) that SNATs pod traffic leaving the cluster CIDR, e.g. CoreDNS to its upstream."""
    ipaddress.IPv4Network(cluster_cidr)
    chains = ["KUBE-SERVICES", "KUBE-POSTROUTING", "KUBE-MARK-MASQ", "KUBE-NODEPORTS"]
    rules: list[str] = [
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
        '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
        f"-A KUBE-MARK-MASQ -j MARK --or-mark {MASQ_MARK.split('/', maxsplit=1)[0]}",
        f"-A KUBE-POSTROUTING -m mark ! --mark {MASQ_MARK} -j RETURN",
        f"-A KUBE-POSTROUTING -j MARK --xor-mark {MASQ_MARK.split('/', maxsplit=1)[0]}",
        '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" '
        "-j MASQUERADE --random-fully",
    ]
    for sp in services:
        sp.validate()
        svc = svc_chain(sp)
        chains.append(svc)
        comment = f'-m comment --comment "{sp.svc_port_name} cluster IP"'
        match = f"-d {sp.cluster_ip}/32 -p {sp.protocol} -m {sp.protocol} --dport {sp.port}"
        rules.append(f"-A KUBE-SERVICES {match} {comment} -j {svc}")
        if masquerade_all:
            rules.append(f"-A {svc} {match} {comment} -j KUBE-MARK-MASQ")
        else:
            rules.append(f"-A {svc} ! -s {cluster_cidr} {match} {comment} -j KUBE-MARK-MASQ")
        n = len(sp.endpoints)
        for i, ep in enumerate(sp.endpoints):
            sep = sep_chain(sp, ep)
            chains.append(sep)
            target = f'-m comment --comment "{sp.svc_port_name} -> {ep.ip}:{ep.port}" -j {sep}'
            if i < n - 1:
                stat = f"-m statistic --mode random --probability {probability(i, n)}"
                rules.append(f"-A {svc} {stat} {target}")
            else:
                rules.append(f"-A {svc} {target}")
            rules.append(f"-A {sep} -s {ep.ip}/32 -j KUBE-MARK-MASQ")
            rules.append(
                f"-A {sep} -p {sp.protocol} -m {sp.protocol} "
                f"-j DNAT --to-destination {ep.ip}:{ep.port}"
            )
        if n == 0:
            rules.append(
                f'-A KUBE-SERVICES {match} -m comment --comment "{sp.svc_port_name} has no '
                'endpoints" -j RETURN'
            )
    if pod_masquerade:
        chains.append("CTH-CNI-MASQ")
        rules.append(f"-A POSTROUTING -s {cluster_cidr} ! -d {cluster_cidr} -j CTH-CNI-MASQ")
        rules.append("-A CTH-CNI-MASQ -m addrtype ! --dst-type LOCAL -j MASQUERADE")
    return "*nat\n" + "".join(f":{c} - [0:0]\n" for c in chains) + "\n".join(rules) + "\nCOMMIT\n"


def render_filter(*, cluster_cidr: str, extra: list[str] | None = None) -> str:
    """kube-proxy's filter rules: drop INVALID forwarded packets, accept tracked flows.

    ``extra`` rules (e.g. NodeLocal DNSCache's ACCEPTs) go into the same atomic restore."""
    ipaddress.IPv4Network(cluster_cidr)
    more = "".join(r + "\n" for r in extra or [])
    return (
        "*filter\n"
        ":KUBE-FORWARD - [0:0]\n"
        '-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD\n'
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n"
        f'-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" '
        f"-m mark --mark {MASQ_MARK} -j ACCEPT\n"
        "-A KUBE-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n"
        f"{more}COMMIT\n"
    )
