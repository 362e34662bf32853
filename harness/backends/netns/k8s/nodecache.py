"""NodeLocal DNSCache on a node: real node-cache (k8s.io/dns), or, where node-cache cannot be
built, its CoreDNS core with node-cache's own networking done by the harness.

Its Corefile is the upstream addon's template (``cluster/addons/dns/nodelocaldns``) with the
three ``__PILLAR__`` values filled that the addon's installer fills; node-cache fills the other
two itself at start: the cluster DNS from the ``kube-dns-upstream`` Service's
``KUBE_DNS_UPSTREAM_SERVICE_HOST`` (set here as the kubelet would) and the upstream servers
from the node's resolv.conf (written here with the topology's upstream).

node-cache would make a dummy interface; this kernel has none, so an empty bridge named
``nodelocaldns`` holds the listen addresses and node-cache runs with ``-setupinterface=false``.
It installs its own iptables NOTRACK/ACCEPT rules, and removes them when it stops.

**Stand-in (labelled):** node-cache is CoreDNS plus that set-up. When node-cache is not in
the cache (the Go module proxy refuses k8s.io/dns here), the pinned CoreDNS runs the same
Corefile with the two remaining placeholders filled as node-cache fills them, and the
harness installs the rules node-cache's ``initIptables`` lists, as the one nft table every
backend loads (:func:`harness.dataplane.nodelocal.nft_ruleset`; kind's node tuner loads the
same text), and deletes it on stop. :func:`implementation` says which one ran; result.json
records it.
"""

from __future__ import annotations

from pathlib import Path

from cthcommon.netns import http_get, run
from harness.backends.kube.nodelocaldns import (
    UPSTREAM_PLACEHOLDER,
    corefile,
    filled_corefile,
)
from harness.backends.netns.k8s.procs import Components
from harness.dataplane.nodelocal import (
    HEALTH_PORT,
    INTERFACE,
    LOCAL_IP,
    TABLE,
    interface_batch,
    nft_ruleset,
)
from harness.kernel.process import Proc
from harness.kubeapi.wait import wait_for
from harness.upstream import ComponentMissing, locate

METRICS_PORT = 9253
UPSTREAM_SERVICE = "kube-dns-upstream"


def base_corefile(domain: str, kube_dns_ip: str, local_ip: str = LOCAL_IP) -> str:
    """The addon's Corefile template with __PILLAR__DNS__DOMAIN__, __PILLAR__LOCAL__DNS__ and
    __PILLAR__DNS__SERVER__ filled; the cluster-DNS and upstream placeholders stay for
    node-cache."""
    return corefile(domain, kube_dns_ip, local_ip, upstream=UPSTREAM_PLACEHOLDER)


def listen_ips(local_ip: str, kube_dns_ip: str) -> list[str]:
    """kube-proxy iptables/nftables mode: the link-local address and the kube-dns ClusterIP
    (the addon's ``-localip``), so pods keeping the ClusterIP are served locally too."""
    return [local_ip, kube_dns_ip]


def argv(binary: Path, ips: list[str], base: Path, conf: Path, pidfile: Path) -> list[str]:
    return [
        str(binary),
        "-localip",
        ",".join(ips),
        "-basecorefile",
        str(base),
        "-conf",
        str(conf),
        "-upstreamsvc",
        UPSTREAM_SERVICE,
        "-setupinterface=false",
        "-interfacename",
        INTERFACE,
        "-health-port",
        str(HEALTH_PORT),
        "-pidfile",
        str(pidfile),
    ]


def env(upstream_service_ip: str) -> dict[str, str]:
    """The Service environment variable a kubelet gives every pod for kube-dns-upstream."""
    return {UPSTREAM_SERVICE.upper().replace("-", "_") + "_SERVICE_HOST": upstream_service_ip}


STAND_IN = "coredns"  # what runs node-cache's Corefile when node-cache is not built


def implementation(kubernetes: str | None = None) -> tuple[str, Path]:
    """("node-cache", its binary), or the labelled stand-in ("coredns", CoreDNS's binary)."""
    try:
        return "node-cache", locate("node-cache", kubernetes)
    except ComponentMissing:
        return STAND_IN, locate("coredns", kubernetes)


def add_rules(node_ns: str, ips: list[str]) -> None:
    """The stand-in's share of node-cache: its rules, as the nft table kind's tuner loads."""
    run(["nft", "-f", "-"], netns=node_ns, input_=nft_ruleset(ips, TABLE))


def del_rules(node_ns: str) -> None:
    run(["nft", "delete", "table", "inet", TABLE], netns=node_ns, check=False)


def proc_name(node_name: str) -> str:
    return f"node-cache-{node_name}"


def add_interface(node_ns: str, ips: list[str]) -> None:
    run(["ip", "-n", node_ns, "-b", "-"], input_=interface_batch(ips))


def del_interface(node_ns: str) -> None:
    run(["ip", "-n", node_ns, "link", "del", INTERFACE], check=False)


def start(
    comps: Components,
    binary: Path,
    *,
    node_name: str,
    node_ns: str,
    domain: str,
    kube_dns_ip: str,
    upstream_service_ip: str,
    upstreams: list[str],
    local_ip: str = LOCAL_IP,
    kind: str = "node-cache",
) -> Proc:
    ips = listen_ips(local_ip, kube_dns_ip)
    comps.netns_file(node_ns, "resolv.conf", "".join(f"nameserver {u}\n" for u in upstreams))
    name = proc_name(node_name)
    base_text = base_corefile(domain, kube_dns_ip, local_ip)
    base = comps.file(f"{name}/Corefile.base", base_text)
    conf = base.with_name("Corefile")
    add_interface(node_ns, ips)
    try:
        if kind == STAND_IN:
            conf.write_text(filled_corefile(base_text, upstream_service_ip))
            proc = comps.spawn(name, [str(binary), "-conf", str(conf)], node_ns, grace_s=5.0)
            add_rules(node_ns, ips)
            return proc
        return comps.spawn(
            name,
            argv(binary, ips, base, conf, base.with_name("node-cache.pid")),
            node_ns,
            env=env(upstream_service_ip),
            grace_s=5.0,
        )
    except BaseException:
        if kind == STAND_IN:
            del_rules(node_ns)
        del_interface(node_ns)
        raise


def notrack_rules(node_ns: str) -> list[str]:
    """The node's NOTRACK rules: node-cache's own (iptables raw) and the stand-in's table."""
    out = run(["iptables", "-t", "raw", "-S"], netns=node_ns).stdout
    rules = [ln for ln in out.splitlines() if "NOTRACK" in ln or "CT --notrack" in ln]
    nft = run(["nft", "list", "table", "inet", TABLE], netns=node_ns, check=False).stdout
    return rules + [ln.strip() for ln in nft.splitlines() if ln.strip().endswith("notrack")]


def wait_ready(proc: Proc, node_ns: str, local_ip: str = LOCAL_IP, timeout_s: float = 30) -> None:
    """Until node-cache's health endpoint answers and its NOTRACK rules are in place."""

    def probe() -> str | None:
        status, body = http_get(node_ns, local_ip, HEALTH_PORT, "/health")
        if status != 200:
            return f"health HTTP {status}: {body[:200]}"
        rules = [r for r in notrack_rules(node_ns) if local_ip in r]
        return None if rules else "no NOTRACK rule for the local address yet"

    wait_for(f"{proc.name} health and rules", probe, timeout_s=timeout_s, procs=[proc])


def stop(
    comps: Components,
    node_name: str,
    node_ns: str,
    *,
    kind: str = "node-cache",
) -> None:
    """Stop node-cache (it removes its rules on SIGTERM; the stand-in's are removed here) and
    remove the interface."""
    comps.stop(proc_name(node_name), grace_s=5.0)
    if kind == STAND_IN:
        del_rules(node_ns)
    del_interface(node_ns)
