"""Change a built topology for a phase, and put it back: the netns backend's levers.

- CoreDNS (real, in its pods): a Corefile change rolls the servers out again, as a ConfigMap
  rollout does; a replica change scales the pods, and the real endpointslice controller and
  kube-proxy re-point the Service (:mod:`.k8s.cluster`);
- NodeLocal DNSCache: real node-cache on each node, with the NOTRACK/ACCEPT rules it
  installs itself (:mod:`.k8s.nodecache`);
- the INJECTED race window (:mod:`harness.dataplane.faults`) on the client pods' nodes, and the
  CPU pinning that keeps the A answer from overtaking the AAAA.

Each lever is a method pair (or a context manager) over :class:`Levers`, which remembers what
is in force; building and tearing down the topology itself is :mod:`.topology`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from cthcommon.errors import CommandFailed
from cthcommon.netns import run
from harness.backends.netns.topology import Topology
from harness.dataplane import nodelocal
from harness.dataplane.faults import TABLE as FAULT_TABLE
from harness.dataplane.faults import (
    listing_argv,
    named_counters,
    race_window_ruleset,
    sum_node_counters,
)
from harness.kernel.process import pin_threads
from harness.plan.types import CoreDNSPlan, RaceFaultPlan

DNS_SERVERS = ("coredns", "node-cache", "upstream")


class Levers:
    """What a phase may change on a built :class:`Topology`, and what is in force now."""

    def __init__(self, topo: Topology) -> None:
        self.topo = topo
        self.coredns: CoreDNSPlan = topo.coredns
        self.nodelocal_interface = ""  # "bridge" once NodeLocal has run (no dummy here)

    @property
    def nodelocal_enabled(self) -> bool:
        return self.topo.k8s.nodelocal

    # --- CoreDNS -------------------------------------------------------------------------
    def set_coredns(self, want: CoreDNSPlan) -> None:
        """A Corefile change rolls CoreDNS out again; a replica change scales the pods, and
        the real endpointslice controller and kube-proxy follow."""
        k8s = self.topo.k8s
        if (want.cache, want.max_concurrent) != (self.coredns.cache, self.coredns.max_concurrent):
            k8s.restart_coredns(self.topo.corefile_for(want))
        if want.replicas != k8s.coredns_replicas:
            k8s.set_coredns_replicas(want.replicas)
        self.coredns = want

    @contextmanager
    def coredns_as(self, want: CoreDNSPlan) -> Iterator[None]:
        old = self.coredns
        try:
            self.set_coredns(want)
            yield
        finally:
            self.set_coredns(old)

    # --- NodeLocal DNSCache ----------------------------------------------------------------
    def enable_nodelocal(self) -> None:
        """Real node-cache on every node (it installs its own NOTRACK rules)."""
        if self.nodelocal_enabled:
            return
        topo = self.topo
        plan = topo.plan
        topo.k8s.enable_nodelocal()
        self.nodelocal_interface = "bridge"
        try:
            client = plan.role("client")[0]
            topo.wait_dns(
                client.ns,
                nodelocal.LOCAL_IP,
                f"http-server.{plan.namespace}.svc.{plan.cluster_domain}",
            )
        except BaseException:
            topo.k8s.disable_nodelocal()
            raise

    def disable_nodelocal(self) -> None:
        if self.nodelocal_enabled:
            self.topo.k8s.disable_nodelocal()

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
        return self.race_fault_counters().get("hits", 0)

    def race_fault_counters(self) -> dict[str, int]:
        """The fault table's named counters (hits, open, answered), summed over the nodes."""
        return sum_node_counters(_fault_counters(n.ns) for n in self.topo.plan.nodes)

    def dns_server_pids(self) -> list[int]:
        procs = [*self.topo.procs.values(), *self.topo.k8s.comps.procs.values()]
        return [p.pid for p in procs if p.name.startswith(DNS_SERVERS)]

    pin = staticmethod(pin_threads)

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


def _fault_counters(ns: str) -> dict[str, int]:
    """The fault table's named counters in one node's namespace ({} where it is not loaded)."""
    try:
        listing = run(listing_argv(FAULT_TABLE), netns=ns).stdout
    except CommandFailed:  # no fault table (not injected in this phase)
        return {}
    return named_counters(listing)
