"""NetnsCluster.phase realizes the phase plan, and only that: the levers and the guard get
exactly what the plan says (kernel and processes replaced by recording fakes)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.backends.netns import cluster as netns_cluster
from harness.plan.phase import plan_cluster, plan_phase
from harness.plan.types import CoreDNSPlan, RaceFaultPlan
from harness.scenario.loader import parse_scenario
from harness.scenario.model import Scenario


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    # the guard
    @contextmanager
    def scope(self) -> Iterator[None]:
        self.calls.append(("scope",))
        yield
        self.calls.append(("scope-end",))

    def set(self, name: str, value: int, netns: str | None = None) -> None:
        self.calls.append(("sysctl", name, value, netns))

    # the levers
    @contextmanager
    def coredns_as(self, want: CoreDNSPlan) -> Iterator[None]:
        self.calls.append(("coredns", want))
        yield

    @contextmanager
    def nodelocal(self, on: bool) -> Iterator[None]:
        self.calls.append(("nodelocal", on))
        yield

    @contextmanager
    def race_fault(self, fault: RaceFaultPlan) -> Iterator[None]:
        self.calls.append(("fault", fault))
        yield

    def flush_conntrack(self) -> None:
        self.calls.append(("flush",))


def scenario() -> Scenario:
    return parse_scenario(
        {
            "name": "t",
            "phases": [
                {
                    "name": "all",
                    "remediations": [
                        "nodelocal-dns",
                        {"kind": "coredns", "replicas": 3},
                        {
                            "kind": "conntrack-sysctls",
                            "nf_conntrack_max": 8192,
                            "nf_conntrack_buckets": "auto",
                            "tcp_timeout_time_wait": 30,
                        },
                    ],
                    "faults": [{"kind": "race-window", "probability": 0.3}],
                }
            ],
        }
    )


def test_phase_realizes_exactly_the_plan() -> None:
    s = scenario()
    rec = Recorder()
    c = netns_cluster.NetnsCluster.__new__(netns_cluster.NetnsCluster)
    c.plan = netns_cluster.plan_topology(plan_cluster(s.cluster), "t", max_coredns=3)
    c.guard = rec  # type: ignore[assignment]
    c.levers = rec  # type: ignore[assignment]
    c.topology = rec  # type: ignore[assignment]
    want = plan_phase(s, s.phases[0])
    assert want.fault is not None
    with c.phase(want) as got:
        assert got == want
    ct = "net.netfilter.nf_conntrack_"
    nodes = [n.ns for n in c.plan.nodes]
    assert rec.calls == [
        ("flush",),
        ("scope",),
        ("sysctl", ct + "max", 8192, None),
        ("sysctl", ct + "buckets", 2048, None),
        *(("sysctl", ct + "tcp_timeout_time_wait", 30, ns) for ns in nodes),
        *(("sysctl", ct + "acct", 1, ns) for ns in nodes),
        ("coredns", CoreDNSPlan(cache=True, max_concurrent=None, replicas=3)),
        ("nodelocal", True),
        ("fault", want.fault),
        ("scope-end",),
    ]
