"""Change a built topology for a phase, and put it back: the netns backend's levers.

- kube-proxy: the Service rules for the CoreDNS replicas in service (:mod:`.kubeproxy`);
- CoreDNS: a config change restarts the servers, as a ConfigMap rollout does;
- NodeLocal DNSCache: the link-local address on each node, a caching server there, and the
  NOTRACK/ACCEPT rules (:mod:`harness.dataplane.nodelocal`);
- the INJECTED race window (:mod:`harness.dataplane.faults`) on the client pods' nodes, and the
  CPU pinning that keeps the A answer from overtaking the AAAA.

Each lever is a method pair (or a context manager) over :class:`Levers`, which remembers what
is in force; building and tearing down the topology itself is :mod:`.topology`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

from harness.backends.netns import kubeproxy
from harness.backends.netns import plan as P
from harness.backends.netns.counters import read_counters
from harness.backends.netns.servers import nodelocal_unbound_conf
from harness.backends.netns.topology import Topology
from harness.dataplane import nodelocal
from harness.dataplane.faults import TABLE as FAULT_TABLE
from harness.dataplane.faults import race_window_ruleset
from harness.errors import BackendError, CommandFailed
from harness.kernel.netns import run
from harness.plan.types import CoreDNSPlan, RaceFaultPlan

DNS_SERVERS = ("coredns", "nodelocal", "upstream")


class Levers:
    """What a phase may change on a built :class:`Topology`, and what is in force now."""

    def __init__(self, topo: Topology) -> None:
        self.topo = topo
        self.coredns: CoreDNSPlan = topo.coredns
        self.proxy = kubeproxy.ProxyState(topo.kube_proxy, topo.coredns.replicas)
        self.nodelocal_interface = ""  # "dummy" or "bridge" once NodeLocal has run

    @property
    def nodelocal_enabled(self) -> bool:
        return self.proxy.nodelocal

    # --- kube-proxy ----------------------------------------------------------------------
    def _proxy(self, state: kubeproxy.ProxyState) -> None:
        if state != self.proxy:
            kubeproxy.apply(self.topo.plan, state)
            self.proxy = state

    # --- CoreDNS -------------------------------------------------------------------------
    def set_coredns(self, want: CoreDNSPlan) -> None:
        """Restart the servers on a config change; re-point the Service on a replica change."""
        if (want.cache, want.max_concurrent) != (self.coredns.cache, self.coredns.max_concurrent):
            self._restart_coredns(want)
        self._proxy(replace(self.proxy, coredns_replicas=want.replicas))
        self.coredns = want

    def _restart_coredns(self, config: CoreDNSPlan) -> None:
        topo = self.topo
        for pod in topo.plan.role("coredns"):
            topo.stop_proc(pod.name)
            topo.start_coredns(pod.name, config)
        for pod in topo.plan.role("coredns"):
            topo.wait_dns(pod.ns, pod.ip, f"kube-dns.kube-system.svc.{topo.plan.cluster_domain}")

    @contextmanager
    def coredns_as(self, want: CoreDNSPlan) -> Iterator[None]:
        old = self.coredns
        try:
            self.set_coredns(want)
            yield
        finally:
            self.set_coredns(old)

    # --- NodeLocal DNSCache ----------------------------------------------------------------
    def _add_local_interface(self, ns: str) -> str:
        """node-cache uses a dummy interface; kernels without CONFIG_DUMMY get an empty bridge."""
        for kind in ("dummy", "bridge"):
            res = run(
                ["ip", "-n", ns, "link", "add", nodelocal.INTERFACE, "type", kind], check=False
            )
            if res.returncode == 0:
                return kind
        raise BackendError(f"cannot create {nodelocal.INTERFACE} in {ns}: {res.stderr.strip()}")

    def enable_nodelocal(self) -> None:
        if self.nodelocal_enabled:
            return
        topo = self.topo
        plan = topo.plan
        try:
            for node in plan.nodes:
                self.nodelocal_interface = self._add_local_interface(node.ns)
                topo.batch(
                    node.ns,
                    [
                        f"addr add {nodelocal.LOCAL_IP}/32 dev {nodelocal.INTERFACE}",
                        f"link set {nodelocal.INTERFACE} up",
                    ],
                )
                wd = topo.workdir / f"nodelocal-{node.name}"
                wd.mkdir(exist_ok=True)
                conf = wd / "unbound.conf"
                conf.write_text(
                    nodelocal_unbound_conf(
                        listen_ip=nodelocal.LOCAL_IP,
                        cluster_domain=plan.cluster_domain,
                        cluster_dns=P.DNS_SERVICE_IP,
                        upstream=P.UPSTREAM_IP,
                        workdir=wd,
                    )
                )
                topo.start(f"nodelocal-{node.name}", ["unbound", "-d", "-c", str(conf)], node.ns)
            self._proxy(replace(self.proxy, nodelocal=True))
            client = plan.role("client")[0]
            topo.wait_dns(
                client.ns,
                nodelocal.LOCAL_IP,
                f"http-server.{plan.namespace}.svc.{plan.cluster_domain}",
            )
        except BaseException:
            self._remove_nodelocal()
            raise

    def disable_nodelocal(self) -> None:
        if self.nodelocal_enabled:
            self._remove_nodelocal()

    def _remove_nodelocal(self) -> None:
        for node in self.topo.plan.nodes:
            self.topo.stop_proc(f"nodelocal-{node.name}")
            run(["ip", "-n", node.ns, "link", "del", nodelocal.INTERFACE], check=False)
        self._proxy(replace(self.proxy, nodelocal=False))

    @contextmanager
    def nodelocal(self, on: bool) -> Iterator[None]:
        """NodeLocal in force for the body (off again after, unless it was on before)."""
        already = self.nodelocal_enabled
        if on:
            self.enable_nodelocal()
        try:
            yield
        finally:
            if on and not already:
                self.disable_nodelocal()

    # --- injected race window ----------------------------------------------------------------
    def enable_race_fault(self, percent: int, nodes: Sequence[str] | None = None) -> None:
        """On ``nodes`` (scenario names; default: the client pods' nodes, as the phase plan
        places it): the race is lost where the client's node inserts the NATed entry."""
        names = list(nodes) if nodes is not None else None
        targets = (
            self.topo.client_nodes()
            if names is None
            else [self.topo.plan.node(n).ns for n in names]
        )
        for ns in targets:
            run(["nft", "-f", "-"], netns=ns, input_=race_window_ruleset(percent))

    def disable_race_fault(self) -> None:
        for node in self.topo.plan.nodes:
            run(["nft", "delete", "table", "inet", FAULT_TABLE], netns=node.ns, check=False)

    def race_fault_hits(self) -> int:
        """Packets the injected rule dropped, summed over the nodes that have it."""
        total = 0
        for ns in (n.ns for n in self.topo.plan.nodes):
            try:
                total += read_counters(ns, FAULT_TABLE).get("hits", 0)
            except CommandFailed:  # no fault table (not injected in this phase)
                continue
        return total

    def dns_server_pids(self) -> list[int]:
        return [p.pid for name, p in self.topo.procs.items() if name.startswith(DNS_SERVERS)]

    @staticmethod
    def pin(pids: list[int], cpus: set[int]) -> None:
        for pid in pids:
            try:
                os.sched_setaffinity(pid, cpus)
            except OSError:
                continue

    @contextmanager
    def race_fault(self, fault: RaceFaultPlan) -> Iterator[None]:
        """The fault rule (nf_conntrack_acct is the phase plan's sysctl), and with
        ``pin_cpus`` the DNS servers on CPU 0 (the load goes on CPU 1) for the body."""
        self.enable_race_fault(fault.percent, fault.nodes)
        servers = self.dns_server_pids() if fault.pin_cpus else []
        try:
            self.pin(servers, {0})
            yield
        finally:
            self.disable_race_fault()
            self.pin(servers, set(range(os.cpu_count() or 1)))
