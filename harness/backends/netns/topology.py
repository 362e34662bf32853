"""Build a TopologyPlan on the real kernel, and take it all down again.

This module only builds (and tears down): namespaces, links, the harness's counters, the
servers outside Kubernetes (upstream resolver, nginx), then the real Kubernetes parts
(control plane, the kubelet's objects, kube-proxy, CoreDNS: :mod:`.k8s.cluster`), readiness.
Changing a built topology for a phase (CoreDNS rollouts and replicas, NodeLocal DNSCache, the
injected race window) is :mod:`.levers`.

Every namespace, file and process is journaled before it is created and gets an undo callback
on an ExitStack. If building fails halfway, what was built is removed before the error is
re-raised. Veths and iptables rules live inside the namespaces, so they go with them; nothing
is created in the host's own namespace.
"""

from __future__ import annotations

import shutil
import socket
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import dns.message
import dns.rdatatype

from cthcommon.errors import BackendError, UnsafeRequest
from cthcommon.netns import entered, run, socket_in
from cthcommon.resolvconf import ResolvConf
from harness.backends.netns import topologyplan as P
from harness.backends.netns.k8s import coredns
from harness.backends.netns.k8s.cluster import K8sParts, K8sSettings
from harness.backends.netns.k8s.kubeproxy import KubeProxySettings
from harness.backends.netns.servers import nginx_conf, upstream_argv
from harness.backends.netns.startmarks import Marks
from harness.backends.netns.topologyplan import TopologyPlan
from harness.backends.stages import Stages
from harness.kernel import sysctl
from harness.kernel.journal import Journal, state_dir
from harness.kernel.process import Proc, spawn, stop_pid, stop_pids
from harness.kernel.stacked import Stacked
from harness.plan.types import CoreDNSPlan, KubeProxyPlan
from loadgen.udp.statsd import MAX_UDP_LENGTH as STATSD_MAX_UDP_LENGTH

NETNS_ETC = Path("/etc/netns")
# at teardown nothing is measured any more: every process gets SIGTERM at once and this long
# to exit, then SIGKILL (CoreDNS's lameduck alone would hold its exit for 5 s)
TEARDOWN_GRACE_S = 0.3


ROUTE_TYPES = frozenset(
    {"unicast", "local", "broadcast", "multicast", "anycast", "nat", "throw", "unreachable"}
    | {"prohibit", "blackhole"}
)


def host_routes() -> list[str]:
    """Every IPv4 destination the host routes, in every table. A typed route ("local
    10.96.0.10 dev kube-ipvs0 table local", what kube-proxy IPVS leaves on a node) names its
    destination second: that is an address of the host's own, so it counts too."""
    out = run(["ip", "-4", "route", "show", "table", "all"]).stdout
    dests = []
    for line in out.splitlines():
        words = line.split()
        if words:
            dests.append(words[1] if words[0] in ROUTE_TYPES and len(words) > 1 else words[0])
    return dests


def check_host_routes() -> None:
    clashes = P.overlapping_routes(host_routes())
    if clashes:
        pretty = ", ".join(f"{h} overlaps {o}" for h, o in clashes)
        raise UnsafeRequest(
            f"the host already routes addresses the harness would use ({pretty}); refusing "
            "so no packet can be confused with the host's own traffic",
            field="cluster",
        )


POD_DNS_MARK = "0x00100000"  # meta mark bit: a DNS query that entered the node from outside
# the statsd sender's datagrams (loadgen.udp.statsd) to port 53 are shorter than a DNS header:
# counted apart, and left out of every DNS counter
STATSD_SIZED = f"udp length <= {STATSD_MAX_UDP_LENGTH}"
DNS_SIZED = f"udp length > {STATSD_MAX_UDP_LENGTH}"


def obs_ruleset() -> str:
    """nft counters on a node: DNS queries entering it (before conntrack), leaving it (after
    NAT) and delivered to a server on the node itself (NodeLocal DNSCache on 169.254.20.10).

    ``dns_in - dns_out - dns_local`` is the number of queries the node dropped. A query is
    marked where it enters, so the node's own queries (NodeLocal's upstream) count in
    neither; nor do the DNS pods' queries to the upstream resolver (the "internet"): a
    client's query that CoreDNS could not forward shows as received but not answered by the
    DNS pods, so counting the forward here too would count one loss twice. Over TCP
    (``use-vc``, NodeLocal's TCP upstream) a query is a data segment (PSH) to port 53; the
    handshake and bare ACKs are not queries.

    The statsd sender's datagrams to port 53 (shorter than a DNS header) are counted apart:
    ``statsd_svc`` sent to the kube-dns ClusterIP by the node's pods, ``statsd_in`` entering
    the node (from its pods or another node), ``statsd_fwd`` routed on and ``statsd_local``
    delivered to the node itself (both before any filter), ``statsd_out`` leaving it. So
    ``in - fwd - local`` died in routing (the blackhole route a deleted pod's address has)
    and ``fwd - out`` was dropped while forwarded (kube-proxy's reject rule).
    """
    pods = f"ip daddr != {P.WORLD_CIDR}"
    q_udp = f"{pods} udp dport 53 {DNS_SIZED}"
    st = f"udp dport 53 {STATSD_SIZED}"
    q_tcp = f"{pods} tcp dport 53 tcp flags & psh == psh"
    r_udp = "udp sport 53"
    r_tcp = "tcp sport 53 tcp flags & psh == psh"
    marked = f"meta mark & {POD_DNS_MARK} == {POD_DNS_MARK}"
    return f"""
table inet cth_obs {{
    counter dns_in {{}}
    counter dns_out {{}}
    counter dns_local {{}}
    counter dns_reply_in {{}}
    counter dns_reply_out {{}}
    counter statsd_svc {{}}
    counter statsd_in {{}}
    counter statsd_fwd {{}}
    counter statsd_local {{}}
    counter statsd_out {{}}
    chain pre {{
        type filter hook prerouting priority -400; policy accept;
        ip daddr {P.DNS_SERVICE_IP} {st} counter name "statsd_svc"
        {st} counter name "statsd_in"
        {q_udp} meta mark set meta mark | {POD_DNS_MARK} counter name "dns_in"
        {q_tcp} meta mark set meta mark | {POD_DNS_MARK} counter name "dns_in"
        {r_udp} counter name "dns_reply_in"
        {r_tcp} counter name "dns_reply_in"
    }}
    chain fwd_first {{
        type filter hook forward priority -500; policy accept;
        {st} counter name "statsd_fwd"
    }}
    chain local_first {{
        type filter hook input priority -500; policy accept;
        {st} counter name "statsd_local"
    }}
    chain local {{
        type filter hook input priority 500; policy accept;
        {marked} {q_udp} counter name "dns_local"
        {marked} {q_tcp} counter name "dns_local"
    }}
    chain post {{
        type filter hook postrouting priority 500; policy accept;
        {marked} {q_udp} counter name "dns_out"
        {marked} {q_tcp} counter name "dns_out"
        {r_udp} counter name "dns_reply_out"
        {r_tcp} counter name "dns_reply_out"
        {st} counter name "statsd_out"
    }}
}}
"""


def server_ruleset() -> str:
    """nft counters in a DNS server pod: queries received and answers sent (the server's
    view), over UDP and over TCP (a data segment to or from port 53); and ``statsd_rx``, the
    statsd sender's datagrams delivered to it (shorter than a DNS header: not queries)."""
    return f"""
table inet cth_srv {{
    counter rx {{}}
    counter tx {{}}
    counter statsd_rx {{}}
    chain in {{
        type filter hook input priority 0; policy accept;
        udp dport 53 {STATSD_SIZED} counter name "statsd_rx"
        udp dport 53 {DNS_SIZED} counter name "rx"
        tcp dport 53 tcp flags & psh == psh counter name "rx"
    }}
    chain out {{
        type filter hook output priority 0; policy accept;
        udp sport 53 counter name "tx"
        tcp sport 53 tcp flags & psh == psh counter name "tx"
    }}
}}
"""


class Topology(Stacked):
    """The built cluster. Use as a context manager."""

    def __init__(
        self,
        plan: TopologyPlan,
        journal: Journal,
        *,
        coredns: CoreDNSPlan | None = None,
        kube_proxy: KubeProxyPlan | None = None,
        kubernetes: str | None = None,
        kube_proxy_release: str | None = None,
        corefile: str | None = None,
        corefile_source: str | None = None,
        stages: Stages | None = None,
    ) -> None:
        """``coredns``: the baseline CoreDNS config and replicas in service (default: cache
        on, every CoreDNS pod); ``kube_proxy``: default iptables with the plan's masquerade."""
        self.plan = plan
        self.journal = journal
        self.workdir = state_dir() / plan.run_id
        self.procs: dict[str, Proc] = {}
        self._stack = ExitStack()
        self.coredns = coredns or CoreDNSPlan(
            cache=True, max_concurrent=None, replicas=len(plan.role("coredns"))
        )
        self.kube_proxy = kube_proxy or KubeProxyPlan("iptables", plan.masquerade_all)
        self.kubernetes = kubernetes or self.kube_proxy.version
        self.kube_proxy_release = kube_proxy_release  # kube-proxy alone from another release
        self.corefile = corefile
        self.corefile_source = corefile_source
        self._k8s: K8sParts | None = None
        self.stages = stages or Stages()  # the set-up's progress lines (none by default)
        self.marks = Marks()  # when each start-up stage was done (restarted by _start)

    # --- lifecycle -------------------------------------------------------------------
    # --- building --------------------------------------------------------------------
    def _start(self) -> None:
        self.marks = Marks()
        check_host_routes()
        self.journal.record("dir", path=str(self.workdir))  # journal first, then create
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._stack.callback(shutil.rmtree, self.workdir, True)
        with self.stages.stage("building the namespaces"):
            for ns in self.plan.all_ns:
                self._add_ns(ns)
            self._wire()
            self._rules()
            self._servers()
        self.marks.mark("namespaces")
        with self.stages.stage("starting the control plane, kube-proxy and CoreDNS"):
            self._components()
            self._stack.callback(self._stop_all)  # unwound first: every process at once
            self._resolv_confs()
            self._wait_ready()
        self.marks.mark("servers answer")
        self.stages.say(f"start-up stages (done at, from the start): {self.marks.line()}")

    def _add_ns(self, ns: str) -> None:
        self.journal.record("netns", name=ns)
        run(["ip", "netns", "add", ns])
        self._stack.callback(run, ["ip", "netns", "del", ns], check=False)
        run(["ip", "-n", ns, "link", "set", "lo", "up"])

    def _veth(self, ns: str, name: str, peer_ns: str) -> None:
        """A veth pair: ``name`` in ``ns``, its peer ``eth0`` in ``peer_ns`` (made in place,
        so nothing ever appears in the host's namespace)."""
        run(
            [
                "ip",
                "-n",
                ns,
                "link",
                "add",
                name,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                peer_ns,
            ]
        )

    def batch(self, ns: str, cmds: list[str]) -> None:
        run(["ip", "-n", ns, "-b", "-"], input_="\n".join(cmds) + "\n")

    def _wire(self) -> None:
        p = self.plan
        vpc: list[str] = []
        # the "internet" with the upstream resolver
        self._veth(p.vpc_ns, "world", p.upstream_ns)
        vpc += [
            "link set world up",
            "addr add 203.0.113.1/32 dev world",
            f"route add {P.UPSTREAM_IP}/32 dev world",
        ]
        self.batch(
            p.upstream_ns,
            [
                "link set eth0 up",
                f"addr add {P.UPSTREAM_IP}/32 dev eth0",
                "route add 203.0.113.1 dev eth0",
                "route add default via 203.0.113.1 dev eth0",
            ],
        )
        for node in p.nodes:
            self._veth(p.vpc_ns, node.vpc_if, node.ns)
            vpc += [
                f"link set {node.vpc_if} up",
                f"addr add {P.VPC_GW}/32 dev {node.vpc_if}",
                f"route add {node.ip}/32 dev {node.vpc_if}",
                f"route add {node.pod_cidr} via {node.ip} dev {node.vpc_if}",
            ]
            cmds = [
                "link set eth0 up",
                f"addr add {node.ip}/32 dev eth0",
                f"route add {P.VPC_GW} dev eth0",
                f"route add default via {P.VPC_GW} dev eth0 src {node.ip}",
            ]
            for pod in p.pods_on(node.name):
                self._veth(node.ns, pod.host_if, pod.ns)
                cmds += [f"link set {pod.host_if} up", f"route add {pod.ip}/32 dev {pod.host_if}"]
                self.batch(
                    pod.ns,
                    [
                        "link set eth0 up",
                        f"addr add {pod.ip}/32 dev eth0",
                        f"route add {P.POD_GW} dev eth0 scope link",
                        f"route add default via {P.POD_GW} dev eth0",
                    ],
                )
            self.batch(node.ns, cmds)
            sysctl.write("net.ipv4.ip_forward", "1", node.ns)
            for pod in p.pods_on(node.name):
                sysctl.write(f"net.ipv4.conf.{pod.host_if}.proxy_arp", "1", node.ns)
                sysctl.write(f"net.ipv4.neigh.{pod.host_if}.proxy_delay", "0", node.ns)
        self.batch(p.vpc_ns, vpc)
        sysctl.write("net.ipv4.ip_forward", "1", p.vpc_ns)
        for pod in p.pods:
            if pod.role == "client":
                sysctl.write("net.ipv4.ip_local_port_range", "1024 65535", pod.ns)
            else:
                sysctl.write("net.core.somaxconn", "8192", pod.ns)

    def _rules(self) -> None:
        """The harness's own observation counters; the Service rules are kube-proxy's."""
        for node in self.plan.nodes:
            run(["nft", "-f", "-"], netns=node.ns, input_=obs_ruleset())
        for ns in [self.plan.upstream_ns, *(p.ns for p in self.plan.role("coredns"))]:
            run(["nft", "-f", "-"], netns=ns, input_=server_ruleset())

    def start(self, name: str, argv: list[str], netns: str) -> Proc:
        proc = spawn(self.journal, name, argv, netns=netns, log=self.workdir / f"{name}.log")
        self.procs[name] = proc
        self._stack.callback(stop_pid, proc.pid, proc.start)
        return proc

    def corefile_for(self, config: CoreDNSPlan) -> str:
        """The Corefile CoreDNS runs with ``config``: the scenario's own file, else kubeadm's
        for this Kubernetes version, with the cache and forward settings applied."""
        base = self.corefile or coredns.kubeadm_corefile(self.plan.cluster_domain)
        return coredns.configured(base, cache=config.cache, max_concurrent=config.max_concurrent)

    @property
    def k8s(self) -> K8sParts:
        if self._k8s is None:
            raise BackendError("the Kubernetes components are not started")
        return self._k8s

    def _components(self) -> None:
        """Control plane, the kubelet's objects, kube-proxy and CoreDNS (real, upstream)."""
        settings = K8sSettings(
            kube_proxy=KubeProxySettings(
                mode=self.kube_proxy.mode,
                masquerade_all=self.kube_proxy.masquerade_all,
                cluster_cidr=P.CLUSTER_CIDR,
            ),
            corefile=self.corefile_for(self.coredns),
            corefile_source=self.corefile_source,
            kubernetes=self.kubernetes,
            kube_proxy_release=self.kube_proxy_release,
            coredns_replicas=self.coredns.replicas,
        )
        self._k8s = self._stack.enter_context(
            K8sParts(self.plan, self.journal, self.workdir, settings, self.marks)
        )

    def _stop_all(self) -> None:
        """Teardown: every process of the cluster (servers, control plane, kube-proxy,
        CoreDNS) together, in one short grace period; each one's own undo, later on the
        stack, then finds it gone."""
        procs = [*self.procs.values(), *(self._k8s.procs() if self._k8s else [])]
        stop_pids([(p.pid, p.start) for p in procs], TEARDOWN_GRACE_S)

    def stop_proc(self, name: str) -> None:
        """Stop one started process now (its undo on the stack stays: stop_pid is idempotent)."""
        proc = self.procs.pop(name, None)
        if proc is not None:
            stop_pid(proc.pid, proc.start)

    def _servers(self) -> None:
        p = self.plan
        if p.upstream_latency_ms > 0:
            argv = [
                sys.executable,
                "-m",
                "harness.backends.netns.upstream",
                "--listen",
                P.UPSTREAM_IP,
                "--delay-ms",
                str(p.upstream_latency_ms),
                *(f"--name={n}={ip}" for n, ip in sorted(p.external_names.items())),
            ]
        else:
            argv = upstream_argv(listen_ip=P.UPSTREAM_IP, names=p.external_names)
        self.start("upstream", argv, p.upstream_ns)
        for pod in p.role("http"):
            wd = self.workdir / pod.name
            wd.mkdir(exist_ok=True)
            conf = wd / "nginx.conf"
            conf.write_text(nginx_conf(listen_ip=pod.ip, workdir=wd))
            self.start(pod.name, ["nginx", "-c", str(conf), "-e", str(wd / "error.log")], pod.ns)

    def default_resolv(self) -> ResolvConf:
        return ResolvConf.parse(f"nameserver {P.DNS_SERVICE_IP}\n")

    def write_resolv_conf(self, pod_ns: str, conf: ResolvConf) -> None:
        d = NETNS_ETC / pod_ns
        if not d.exists():
            self.journal.record("path", path=str(d))
            d.mkdir(parents=True)
            self._stack.callback(shutil.rmtree, d, True)
        (d / "resolv.conf").write_text(conf.render())

    def _resolv_confs(self) -> None:
        # the real per-pod file; the scenario's dnsConfig overwrites it per phase
        for pod in self.plan.role("client"):
            self.write_resolv_conf(pod.ns, self.default_resolv())

    # --- readiness -------------------------------------------------------------------
    def _query(self, ns: str, server: str, name: str, timeout: float = 0.3) -> bool:
        q = dns.message.make_query(name, dns.rdatatype.A)
        s = socket_in(ns, socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.settimeout(timeout)
            s.sendto(q.to_wire(), (server, 53))
            data, _ = s.recvfrom(4096)
            return dns.message.from_wire(data).id == q.id
        except OSError:
            return False
        finally:
            s.close()

    def wait_dns(self, ns: str, server: str, name: str, deadline_s: float = 10.0) -> None:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if self._query(ns, server, name):
                return
            self.check_procs()
        raise BackendError(f"DNS {server} not answering {name} from {ns} within {deadline_s}s")

    def _wait_http(self, ns: str, ip: str, deadline_s: float = 10.0) -> None:
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            with entered(ns):
                s = socket.socket()
            s.settimeout(0.3)
            try:
                s.connect((ip, 80))
                s.sendall(b"GET / HTTP/1.0\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return
            except OSError:
                time.sleep(0.05)
            finally:
                s.close()
            self.check_procs()
        raise BackendError(f"HTTP {ip}:80 not answering from {ns} within {deadline_s}s")

    def check_procs(self) -> None:
        procs = [*self.procs.values(), *(self._k8s.procs() if self._k8s else [])]
        for proc in procs:
            if not proc.alive():
                raise BackendError(
                    f"{proc.name} (pid {proc.pid}) exited with {proc.popen.returncode}: "
                    f"{proc.tail()}"
                )

    def _wait_ready(self) -> None:
        p = self.plan
        client = p.role("client")[0]
        dom = p.cluster_domain
        for pod in p.role("coredns")[: self.coredns.replicas]:
            self.wait_dns(pod.ns, pod.ip, f"kube-dns.kube-system.svc.{dom}")
        self.wait_dns(client.ns, P.DNS_SERVICE_IP, f"http-server.{p.namespace}.svc.{dom}")
        for name in p.external_names:
            self.wait_dns(client.ns, P.DNS_SERVICE_IP, name)
        self._wait_http(client.ns, P.HTTP_SERVICE_IP)

    def client_nodes(self) -> list[str]:
        """Namespaces of the nodes that run client pods: where their DNS is DNATed/SNATed."""
        names = {p.node for p in self.plan.role("client")}
        return [n.ns for n in self.plan.nodes if n.name in names]

    # --- cheap reset ------------------------------------------------------------------
    def flush_conntrack(self) -> None:
        for node in self.plan.nodes:
            run(["conntrack", "-F"], netns=node.ns, check=False)
