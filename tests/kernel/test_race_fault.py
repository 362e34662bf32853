"""The INJECTED race window hits only what the real race hits: the parallel same-socket pair."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from cthcommon.resolvconf import ResolvConf
from harness.backends.netns import topologyplan as P
from harness.backends.netns.levers import Levers
from harness.backends.netns.topology import Topology
from harness.backends.netns.topologyplan import plan_topology
from harness.dataplane import nodelocal
from harness.kernel import sysctl
from harness.kernel.journal import HostLock, Journal
from harness.plan.phase import plan_cluster
from harness.scenario.model import ClusterSpec
from loadgen.dns.accounting import summarize
from loadgen.dns.engine import run_dns_load
from loadgen.dns.types import ClientPod, DNSPlan

pytestmark = pytest.mark.kernel

SEARCH = ("default.svc.cluster.local", "svc.cluster.local", "cluster.local")


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Levers]:
    """A cluster whose client node drops EVERY unreplied 2nd packet (P=1), CPUs pinned."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONNTRACK_HARNESS_STATE_DIR", str(tmp_path_factory.mktemp("state")))
        with HostLock(wait_s=120):
            yield from _faulty()


def _faulty() -> Iterator[Levers]:
    j = Journal.create(os.urandom(3).hex())
    try:
        with Topology(
            plan_topology(plan_cluster(ClusterSpec(nodes=2, client_pods=2)), j.run_id), j
        ) as topo:
            for ns in topo.client_nodes():
                sysctl.write("net.netfilter.nf_conntrack_acct", "1", ns)
            levers = Levers(topo)
            levers.enable_race_fault(100)
            levers.pin(levers.dns_server_pids(), {0})
            yield levers
    finally:
        j.close()


def drive(
    levers: Levers,
    resolver: str,
    *flags: str,
    nameserver: str = P.DNS_SERVICE_IP,
    lookups: int = 12,
) -> tuple[dict, int]:
    conf = ResolvConf.build(
        [nameserver], SEARCH, {"ndots": "5", "timeout": "1", **dict.fromkeys(flags)}
    )
    pods = [ClientPod(p.ns, p.ip, conf) for p in levers.topo.plan.role("client")]
    plan = DNSPlan(rate=lookups / 1.0, duration_s=1.0, names=["http-server"], resolver=resolver)
    before = levers.race_fault_hits()
    old = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {1})  # clients on the other CPU, as KERNEL.md found necessary
    try:
        records = asyncio.run(run_dns_load(pods, plan))
    finally:
        os.sched_setaffinity(0, old)
    summary = summarize(records, timeout_s=1.0)
    print(
        f"{resolver} {flags or ''}: {summary['lookups']} lookups, "
        f"{summary['full_timeout_waits']} full-timeout waits, "
        f"{levers.race_fault_hits() - before} rule hits"
    )
    return summary, levers.race_fault_hits() - before


def test_parallel_same_socket_pair_is_hit_and_waits_timeout(faulty: Levers) -> None:
    summary, hits = drive(faulty, "glibc", lookups=30)
    # P=1, but the rule can only fire when AAAA leaves before A's answer is back: with CPUs
    # pinned that is most pairs (KERNEL.md: 298/300 with a C sender; Python sends slower)
    assert hits >= summary["lookups"] * 0.5
    # every hit costs exactly one full `timeout:1` wait, and nothing else waits
    assert summary["full_timeout_waits"] == hits
    assert 1000 <= summary["latency_ms"]["p99"] < 2000


@pytest.mark.parametrize(
    ("resolver", "flags"),
    [
        ("glibc", ("single-request",)),
        ("glibc", ("single-request-reopen",)),
        ("go", ()),
        ("sequential", ()),
    ],
)
def test_not_hit_when_queries_are_sequential_or_on_new_sockets(
    faulty: Levers, resolver: str, flags: tuple[str, ...]
) -> None:
    summary, hits = drive(faulty, resolver, *flags)
    assert summary["lookups"] >= 10
    assert hits == 0
    assert summary["full_timeout_waits"] == 0


def test_musl_ignores_single_request_reopen_and_is_hit(faulty: Levers) -> None:
    summary, hits = drive(faulty, "musl", "single-request-reopen")
    assert hits > 0
    assert summary["full_timeout_waits"] > 0


def test_notracked_nodelocal_traffic_is_never_hit(faulty: Levers) -> None:
    faulty.enable_nodelocal()
    try:
        summary, hits = drive(faulty, "glibc", nameserver=nodelocal.LOCAL_IP)
    finally:
        faulty.disable_nodelocal()
    assert summary["lookups"] >= 10
    assert hits == 0
    assert summary["full_timeout_waits"] == 0
