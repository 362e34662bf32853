"""The benches' testbed is the harness's own netns cluster (:class:`Topology`), not a copy.

So a generator is measured on exactly the path a scenario drives: client pod -> routed veth
-> node (kube-proxy iptables DNAT + MASQUERADE to the ClusterIP) -> vpc -> node -> dnsmasq
(CoreDNS) or nginx pod. Every namespace is ``cth-<run id>-...``; the topology's own journal
undoes everything on every exit path, and the journal is replayed once more as a safety net.
"""

from __future__ import annotations

import os
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cthcommon.errors import RestoreFailed
from cthcommon.netns import open_in
from harness.backends.netns import topologyplan as P
from harness.backends.netns.topology import Topology
from harness.backends.netns.topologyplan import plan_topology
from harness.kernel import sysctl
from harness.kernel.journal import Journal
from harness.plan.phase import plan_cluster
from harness.restore import RestoreReport, undo_journal
from harness.scenario.model import ClusterSpec, CoreDNSSpec

DNS_IP = P.DNS_SERVICE_IP
HTTP_IP = P.HTTP_SERVICE_IP
SERVICE_FQDN = "http-server.default.svc.cluster.local."


def bench_run_id() -> str:
    """A run id outside ``restore``'s orphan pattern (``cth-<6 hex>-``): a harness run or a
    test that uses another state directory (its own lock, its own journals) sweeps every
    namespace of that pattern it has no journal for, ours included, mid-measurement. The
    bench's own journal still undoes everything it builds, on every exit path."""
    return "zb" + secrets.token_hex(2)


def cluster_spec(client_pods: int, coredns: int = 2, nodes: int = 2) -> ClusterSpec:
    return ClusterSpec(nodes=nodes, client_pods=client_pods, coredns=CoreDNSSpec(replicas=coredns))


@contextmanager
def topology(client_pods: int, coredns: int = 2, *, nodes: int = 2) -> Iterator[Topology]:
    """Build the harness topology; tear it down (and replay its journal) however we leave."""
    run_id = bench_run_id()
    journal = Journal.create(run_id, scenario="bench", argv=sys.argv)
    try:
        plan = plan_topology(plan_cluster(cluster_spec(client_pods, coredns, nodes)), run_id)
        with Topology(plan, journal) as topo:
            yield topo
    finally:
        report = RestoreReport()
        undo_journal(journal, report)
        if report.errors:
            raise RestoreFailed("bench cleanup incomplete:\n  " + "\n  ".join(report.errors))
        journal.close()


def short_udp_timeouts(topo: Topology, seconds: int = 1) -> None:
    """Per-namespace (our node namespaces only): UDP entries expire fast, so a long DNS
    bench stays off a full table even when someone else shrank the host's global max."""
    for node in topo.plan.nodes:
        sysctl.write("net.netfilter.nf_conntrack_udp_timeout", str(seconds), node.ns)


def conntrack_count(ns: str) -> int:
    """Entries in one namespace's own conntrack table right now."""
    fd = open_in(ns, "/proc/sys/net/netfilter/nf_conntrack_count")
    try:
        return int(os.pread(fd, 64, 0))
    finally:
        os.close(fd)


def timed_up_down(client_pods: int, coredns: int, nodes: int = 2) -> dict[str, Any]:
    """Wall time to build (servers up and answering) and to tear down one topology, and
    when each start-up stage was done (``stages``: seconds from the topology's start)."""
    t0 = time.monotonic()
    with topology(client_pods, coredns, nodes=nodes) as topo:
        up = time.monotonic() - t0
        pods = len(topo.plan.pods)
        stages = {k: round(v, 3) for k, v in topo.marks.at.items()}
        t1 = time.monotonic()
    down = time.monotonic() - t1
    return {
        "up_s": up,
        "down_s": down,
        "total_s": up + down,
        "pods": pods,
        "nodes": nodes,
        "stages": stages,
    }
