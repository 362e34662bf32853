"""NodeLocal DNSCache's data plane: the link-local listen address, the interface holding it,
and node-cache's own NOTRACK/ACCEPT rules (pure renderers for both backend families).

Real node-cache installs these rules itself (iptables). Where node-cache cannot be built (the
Go module proxy refuses k8s.io/dns here), the labelled stand-in runs node-cache's Corefile on
the pinned CoreDNS and the harness installs exactly these rules, rendered once here as one
nft table (:func:`nft_ruleset`, named :data:`TABLE`) and loaded the same way on every
backend: ``nft -f`` in a netns node (:mod:`harness.backends.netns.k8s.nodecache`), the same
text from the node tuner on a kind or kubeconfig node (:mod:`harness.backends.kube.tuner`).
"""

from __future__ import annotations

from collections.abc import Sequence

LOCAL_IP = "169.254.20.10"
INTERFACE = "nodelocaldns"
HEALTH_PORT = 8080
TABLE = "cth_nodelocal"  # the stand-in's nft table, on every backend


def interface_batch(ips: Sequence[str], name: str = INTERFACE) -> str:
    """The interface node-cache makes, holding its listen addresses, as one ``ip -batch``
    text loaded the same way on every backend (``ip -b -`` in the node's namespace: the netns
    node, or the node tuner on a kind or kubeconfig node). An empty bridge: node-cache makes a
    dummy link, and this kernel has none; nothing is attached to it either way."""
    lines = [f"link add {name} type bridge"]
    lines += [f"addr add {ip}/32 dev {name}" for ip in ips]
    lines.append(f"link set {name} up")
    return "\n".join(lines) + "\n"


# node-cache's rules per listen address (k8s.io/dns cmd/node-cache/app/cache_app.go,
# initIptables): (table, chain, protocols, address match, port match, target, port)
_RULES = (
    ("raw", "PREROUTING", ("tcp", "udp"), "-d", "--dport", "NOTRACK", "dns"),
    ("filter", "INPUT", ("tcp", "udp"), "-d", "--dport", "ACCEPT", "dns"),
    ("raw", "OUTPUT", ("tcp", "udp"), "-s", "--sport", "NOTRACK", "dns"),
    ("filter", "OUTPUT", ("tcp", "udp"), "-s", "--sport", "ACCEPT", "dns"),
    ("raw", "OUTPUT", ("tcp", "udp"), "-d", "--dport", "NOTRACK", "dns"),
    ("raw", "OUTPUT", ("tcp",), "-d", "--dport", "NOTRACK", "health"),
    ("raw", "OUTPUT", ("tcp",), "-s", "--sport", "NOTRACK", "health"),
)


def iptables_rules(
    ips: list[str], port: int = 53, health_port: int = HEALTH_PORT
) -> list[list[str]]:
    """node-cache's own rules for its listen addresses, as ``[table, chain, *match]``."""
    out: list[list[str]] = []
    for ip in ips:
        for table, chain, protos, addr, pmatch, target, which in _RULES:
            p = str(port if which == "dns" else health_port)
            for proto in protos:
                out.append([table, chain, "-p", proto, addr, ip, pmatch, p, "-j", target])
    return out


_NFT_MATCH = {"-d": "ip daddr", "-s": "ip saddr", "--dport": "dport", "--sport": "sport"}
_NFT_VERDICT = {"NOTRACK": "notrack", "ACCEPT": "accept"}


def nft_ruleset(ips: list[str], table: str, port: int = 53, health_port: int = HEALTH_PORT) -> str:
    """The same rules as one ``inet`` nft table: a base chain per iptables (table, chain) at
    that table's priority (raw before conntrack, so NOTRACK takes effect)."""
    chains: dict[tuple[str, str], list[str]] = {}
    for table_, chain, _p, proto, addr, ip, pmatch, p, _j, target in iptables_rules(
        ips, port, health_port
    ):
        rule = f"{_NFT_MATCH[addr]} {ip} {proto} {_NFT_MATCH[pmatch]} {p} {_NFT_VERDICT[target]}"
        chains.setdefault((table_, chain), []).append(rule)
    out = [f"table inet {table} {{"]
    for (table_, chain), rules in chains.items():
        name = f"{table_}_{chain.lower()}"
        out.append(f"    chain {name} {{")
        out.append(f"        type filter hook {chain.lower()} priority {table_}; policy accept;")
        out += [f"        {r}" for r in rules]
        out.append("    }")
    out.append("}")
    return "\n".join(out) + "\n"
