"""A tiny DNS testbed in network namespaces, for the DNS load bench and the capture test.

``pods`` client namespaces reach a dnsmasq in a server namespace, either directly over a
veth (``clusterip=False``) or, like a Kubernetes node, through a node namespace whose
kube-proxy-style DNAT rule maps the ClusterIP ``10.96.0.10:53`` to the server.

Every namespace is named ``cth-dl-<random>-...``; everything is removed on exit, on every
path, including when set-up fails halfway.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cthcommon.netns import run
from cthcommon.resolvconf import ResolvConf

CLUSTER_IP = "10.96.0.10"
SERVICE_NAME = "my-service.default.svc.cluster.local"
SERVICE_IP = "10.0.0.99"
SEARCH = ("default.svc.cluster.local", "svc.cluster.local", "cluster.local")
DROP_TABLE = "cth_dl_drop"
# For the server namespace: the 2nd query of a conntrack flow is dropped on its way in. That
# is the AAAA of a same-socket pair (and of a same-socket A-then-AAAA), never a query that is
# the first or the third+ on its socket. Deterministic, unlike the real race, so a real
# resolver and a model meet exactly the same drops. Needs nf_conntrack_acct=1 there.
DROP_SECOND_QUERY_RULES = f"""table inet {DROP_TABLE} {{
  chain input {{
    type filter hook input priority filter; policy accept;
    udp dport 53 ct original packets 2 counter drop
  }}
}}
"""


@dataclass
class DNSBed:
    tag: str
    server_ns: str
    server_ip: str
    dns_ip: str  # what pods put in resolv.conf: the server itself, or the ClusterIP
    pod_ns: list[str]
    pod_ips: list[str]
    node_ns: str | None = None
    dnsmasq: subprocess.Popen[bytes] | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def resolv(self, *options: str) -> ResolvConf:
        text = f"nameserver {self.dns_ip}\nsearch {' '.join(SEARCH)}\noptions ndots:5"
        return ResolvConf.parse(text + (" " + " ".join(options) if options else "") + "\n")


def _ip(*args: str, netns: str | None = None) -> None:
    run(["ip", *args], netns=netns)


def _veth(ns_a: str, if_a: str, ns_b: str, if_b: str) -> None:
    # Created directly inside both namespaces: the names never exist in the host namespace.
    _ip("link", "add", if_a, "netns", ns_a, "type", "veth", "peer", "name", if_b, "netns", ns_b)


def dnsmasq_argv(listen: str, *extra: str) -> list[str]:
    return [
        "dnsmasq",
        "-k",
        "--conf-file=/dev/null",
        "--no-resolv",
        "--no-hosts",
        "--pid-file=",
        f"--listen-address={listen}",
        "--bind-interfaces",
        "--local=/cluster.local/",
        "--local=/org/",
        "--local=/example/",
        f"--host-record={SERVICE_NAME},{SERVICE_IP}",
        "--cache-size=0",
        *extra,
    ]


@contextmanager
def dns_bed(
    pods: int = 1, *, clusterip: bool = False, dnsmasq_extra: tuple[str, ...] = ()
) -> Iterator[DNSBed]:
    tag = f"cth-dl-{secrets.token_hex(3)}"
    with ExitStack() as stack:
        created: list[str] = []

        def add_ns(name: str) -> str:
            _ip("netns", "add", name)
            created.append(name)
            return name

        def cleanup() -> None:
            for ns in reversed(created):
                subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
                shutil.rmtree(f"/etc/netns/{ns}", ignore_errors=True)

        stack.callback(cleanup)
        srv = add_ns(f"{tag}-srv")
        _ip("link", "set", "lo", "up", netns=srv)
        pod_ns = [add_ns(f"{tag}-pod{i}") for i in range(pods)]
        pod_ips: list[str] = []
        node: str | None = None
        if not clusterip:
            server_ip = "10.77.0.1"
            for i, ns in enumerate(pod_ns):
                _veth(ns, "eth0", srv, f"p{i}")
                ip = f"10.77.{i}.2"
                _ip("addr", "add", f"{ip}/24", "dev", "eth0", netns=ns)
                _ip("addr", "add", f"10.77.{i}.1/24", "dev", f"p{i}", netns=srv)
                _ip("link", "set", f"p{i}", "up", netns=srv)
                pod_ips.append(ip)
            dns_ip = server_ip
        else:
            node = add_ns(f"{tag}-node")
            _ip("link", "set", "lo", "up", netns=node)
            server_ip = "10.79.0.2"
            _veth(node, "dns0", srv, "eth0")
            _ip("addr", "add", "10.79.0.1/24", "dev", "dns0", netns=node)
            _ip("link", "set", "dns0", "up", netns=node)
            _ip("addr", "add", f"{server_ip}/24", "dev", "eth0", netns=srv)
            _ip("link", "set", "eth0", "up", netns=srv)
            _ip("route", "add", "default", "via", "10.79.0.1", netns=srv)
            for i, ns in enumerate(pod_ns):
                _veth(ns, "eth0", node, f"pod{i}")
                ip = f"10.78.{i}.2"
                _ip("addr", "add", f"{ip}/24", "dev", "eth0", netns=ns)
                _ip("addr", "add", f"10.78.{i}.1/24", "dev", f"pod{i}", netns=node)
                _ip("link", "set", f"pod{i}", "up", netns=node)
                pod_ips.append(ip)
            run(["sysctl", "-qw", "net.ipv4.ip_forward=1"], netns=node)
            # Short UDP conntrack timeouts (per namespace) keep a long bench off a full table.
            run(
                ["sysctl", "-qw", "net.netfilter.nf_conntrack_udp_timeout=1"],
                netns=node,
                check=False,
            )
            nat = (
                "table ip cth_nat {\n chain prerouting {\n"
                "  type nat hook prerouting priority dstnat; policy accept;\n"
                f"  ip daddr {CLUSTER_IP} udp dport 53 dnat to {server_ip}:53\n"
                f"  ip daddr {CLUSTER_IP} tcp dport 53 dnat to {server_ip}:53\n"
                " }\n}\n"
            )
            run(["nft", "-f", "-"], netns=node, input_=nat)
            dns_ip = CLUSTER_IP
        for i, ns in enumerate(pod_ns):
            _ip("link", "set", "lo", "up", netns=ns)
            _ip("link", "set", "eth0", "up", netns=ns)
            gw = f"10.77.{i}.1" if not clusterip else f"10.78.{i}.1"
            _ip("route", "add", "default", "via", gw, netns=ns)
        if not clusterip:
            _ip("addr", "add", f"{server_ip}/32", "dev", "lo", netns=srv)
        bed = DNSBed(tag, srv, server_ip, dns_ip, pod_ns, pod_ips, node)
        proc = subprocess.Popen(
            ["ip", "netns", "exec", srv, *dnsmasq_argv(server_ip, *dnsmasq_extra)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        bed.dnsmasq = proc

        def stop() -> None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)

        stack.callback(stop)
        _wait_for_dns(bed)
        yield bed


def _wait_for_dns(bed: DNSBed, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert bed.dnsmasq is not None
        if bed.dnsmasq.poll() is not None:
            err = bed.dnsmasq.stderr.read().decode() if bed.dnsmasq.stderr else ""
            raise RuntimeError(f"dnsmasq exited: {err}")
        out = run(["ss", "-lnu"], netns=bed.server_ns, check=False).stdout
        if f"{bed.server_ip}:53" in out:
            return
        time.sleep(0.05)
    raise RuntimeError("dnsmasq did not start listening")


def write_pod_resolv(netns: str, conf: ResolvConf) -> Path:
    """``/etc/netns/<netns>/resolv.conf``, which ``ip netns exec`` bind-mounts."""
    d = Path("/etc/netns") / netns
    d.mkdir(parents=True, exist_ok=True)
    p = d / "resolv.conf"
    p.write_text(conf.render())
    return p
