"""The one table: the expected phase plan for each remediation and fault kind."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from cthcommon.errors import BadInput
from harness.plan import PhasePlan
from harness.plan.phase import plan_phase, plan_run
from harness.plan.types import (
    CoreDNSPlan,
    DNSLoadPlan,
    HTTPLoadPlan,
    KubeProxyPlan,
    LoadPlan,
    PodDNS,
    RaceFaultPlan,
    SysctlPlan,
)
from harness.scenario.loader import parse_scenario
from harness.scenario.model import REMEDIATION_KINDS, Scenario
from harness.upstream import default_version

CT = "net.netfilter.nf_conntrack_"


def scenario(phase: dict[str, Any], **top: Any) -> Scenario:
    data: dict[str, Any] = {
        "name": "t",
        "load": {
            "duration_s": 5,
            "http": {"mode": "short-lived", "rate": 800},
            "dns": {"rate": 100, "names": ["http-server", "api.example.com"]},
        },
        "phases": [{"name": "p", **phase}],
        **top,
    }
    return parse_scenario(data)


BASE = PhasePlan(
    name="p",
    remediations=(),
    pod_dns=PodDNS(
        nameservers=("cluster-dns",),
        searches=("default.svc.cluster.local", "svc.cluster.local", "cluster.local"),
        options=(("ndots", "5"),),
    ),
    fqdn=False,
    load=LoadPlan(
        duration_s=5,
        dns=DNSLoadPlan(
            resolver="glibc",
            rate=100,
            names=("http-server", "api.example.com"),
            group=2,
            expanded=False,
            pattern="constant",
            burst_on_s=1.0,
            burst_off_s=1.0,
            workers=1,
            lookups_per_process=1,
        ),
        http=HTTPLoadPlan(
            mode="short-lived",
            rate=800,
            pool_size=8,
            connect_timeout_s=2.0,
            max_in_flight=2000,
            workers=1,
        ),
    ),
    sysctls=SysctlPlan(),
    fault=None,
    coredns=CoreDNSPlan(cache=True, max_concurrent=None, replicas=2),
    nodelocal=False,
    kube_proxy=KubeProxyPlan(mode="iptables", masquerade_all=True, version=default_version()),
)
assert BASE.load.dns is not None
assert BASE.load.http is not None
DNS, HTTP = BASE.load.dns, BASE.load.http

TABLE: list[tuple[str, dict[str, Any], PhasePlan]] = [
    ("baseline", {}, BASE),
    (
        "pooling",
        {"remediations": [{"kind": "pooling", "pool_size": 16}]},
        replace(
            BASE,
            remediations=("pooling",),
            load=replace(BASE.load, http=replace(HTTP, mode="pooled", pool_size=16)),
        ),
    ),
    (
        "conntrack-sysctls",
        {
            "remediations": [
                {
                    "kind": "conntrack-sysctls",
                    "nf_conntrack_max": 65536,
                    "nf_conntrack_buckets": "auto",
                    "tcp_timeout_time_wait": 30,
                }
            ]
        },
        replace(
            BASE,
            remediations=("conntrack-sysctls",),
            sysctls=SysctlPlan(
                conntrack_max=65536,
                buckets=16384,
                per_node=((CT + "tcp_timeout_time_wait", 30),),
            ),
        ),
    ),
    (
        "resolver-option",
        {
            "remediations": [
                {
                    "kind": "resolver-option",
                    "options": [{"name": "single-request-reopen"}, {"name": "ndots", "value": "2"}],
                }
            ]
        },
        replace(
            BASE,
            remediations=("resolver-option",),
            pod_dns=replace(
                BASE.pod_dns, options=(("ndots", "2"), ("single-request-reopen", None))
            ),
        ),
    ),
    (
        "nodelocal-dns",
        {"remediations": ["nodelocal-dns"]},
        replace(
            BASE,
            remediations=("nodelocal-dns",),
            pod_dns=replace(BASE.pod_dns, nameservers=("nodelocal",)),
            nodelocal=True,
        ),
    ),
    (
        "fqdn",
        {"remediations": ["fqdn"]},
        replace(
            BASE,
            remediations=("fqdn",),
            fqdn=True,
            load=replace(
                BASE.load,
                dns=replace(
                    DNS, names=("http-server.default.svc.cluster.local.", "api.example.com.")
                ),
            ),
        ),
    ),
    (
        "coredns",
        {"remediations": [{"kind": "coredns", "cache": False, "replicas": 3}]},
        replace(
            BASE,
            remediations=("coredns",),
            coredns=CoreDNSPlan(cache=False, max_concurrent=None, replicas=3),
        ),
    ),
    (
        "race-window",
        {"faults": [{"kind": "race-window", "probability": 0.5}]},
        replace(
            BASE,
            fault=RaceFaultPlan(probability=0.5, percent=50, pin_cpus=True, nodes=("node-1",)),
            sysctls=SysctlPlan(per_node=((CT + "acct", 1),)),
        ),
    ),
    (
        "race-window-tiny",  # one rule for every backend: a tiny probability still drops, at 1 %
        {"faults": [{"kind": "race-window", "probability": 0.001, "pin_cpus": False}]},
        replace(
            BASE,
            fault=RaceFaultPlan(probability=0.001, percent=1, pin_cpus=False, nodes=("node-1",)),
            sysctls=SysctlPlan(per_node=((CT + "acct", 1),)),
        ),
    ),
]


@pytest.mark.parametrize(("label", "phase", "want"), TABLE, ids=[row[0] for row in TABLE])
def test_expected_plan(label: str, phase: dict[str, Any], want: PhasePlan) -> None:
    s = scenario(phase)
    assert plan_phase(s, s.phases[0]) == want


def test_the_table_covers_every_remediation_kind() -> None:
    assert set(REMEDIATION_KINDS) <= {row[0] for row in TABLE}


def test_remediations_combine_in_order() -> None:
    s = scenario(
        {
            "remediations": [
                "pooling",
                {"kind": "coredns", "cache": False},
                {"kind": "coredns", "max_concurrent": 20},
                {"kind": "conntrack-sysctls", "nf_conntrack_max": 8192},
                {"kind": "conntrack-sysctls", "tcp_timeout_time_wait": 30},
            ],
            "faults": [
                {"kind": "race-window", "probability": 0.2},
                {"kind": "race-window", "probability": 0.6, "pin_cpus": False},
            ],
        }
    )
    plan = plan_phase(s, s.phases[0])
    assert plan.coredns == CoreDNSPlan(cache=False, max_concurrent=20, replicas=2)
    assert plan.sysctls == SysctlPlan(
        conntrack_max=8192,
        per_node=((CT + "tcp_timeout_time_wait", 30), (CT + "acct", 1)),
    )
    # two faults are one rule: the highest probability, pinned if any asks
    assert plan.fault == RaceFaultPlan(
        probability=0.6, percent=60, pin_cpus=True, nodes=("node-1",)
    )
    assert plan.injected


def test_the_fault_goes_on_the_client_pods_node_only() -> None:
    s = scenario(
        {"faults": [{"kind": "race-window"}]}, cluster={"nodes": 3, "client_node": "node-2"}
    )
    plan = plan_phase(s, s.phases[0])
    assert plan.fault is not None
    assert plan.fault.nodes == ("node-2",)


def test_phase_load_replaces_the_scenarios() -> None:
    s = scenario({"load": {"duration_s": 2, "http": None, "dns": {"rate": 10, "names": ["x"]}}})
    load = plan_phase(s, s.phases[0]).load
    assert load.http is None
    assert load.dns is not None
    assert (load.duration_s, load.dns.rate, load.dns.names) == (2, 10, ("x",))


def test_n_names_are_expanded_once_per_lookup_and_fqdn_applies_to_them() -> None:
    s = scenario(
        {
            "remediations": ["fqdn"],
            "load": {
                "duration_s": 2,
                "http": None,
                "dns": {"rate": 3, "names": ["u{n}.example.org", "http-server"]},
            },
        }
    )
    dns = plan_phase(s, s.phases[0]).load.dns
    assert dns is not None
    assert dns.expanded
    assert dns.group == 2
    assert dns.names == tuple(
        n
        for i in range(6)
        for n in (f"u{i}.example.org.", "http-server.default.svc.cluster.local.")
    )


def test_run_plan_plans_every_phase_and_the_most_coredns_replicas() -> None:
    s = parse_scenario(
        {
            "name": "t",
            "cluster": {"nodelocal_dns": True, "masquerade_all": False},
            "node_sysctls": {"nf_conntrack_max": 4096, "udp_timeout": 10},
            "phases": [
                {"name": "a"},
                {"name": "b", "remediations": [{"kind": "coredns", "replicas": 5}]},
            ],
        }
    )
    run = plan_run(s)
    assert [p.name for p in run.phases] == ["a", "b"]
    assert run.max_coredns_replicas == 5
    assert run.nodelocal
    assert all(p.nodelocal for p in run.phases)  # NodeLocal runs in every phase...
    assert run.phases[0].pod_dns.nameservers == ("cluster-dns",)  # ...pods keep kube-dns
    assert run.kube_proxy == KubeProxyPlan(
        "iptables", masquerade_all=False, version=default_version()
    )
    # the run-wide max gets a real node's density: one bucket per entry
    assert run.sysctls == SysctlPlan(
        conntrack_max=4096, buckets=4096, per_node=((CT + "udp_timeout", 10),)
    )


# --- the one buckets rule -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("top", "block", "want"),
    [
        ({}, {"nf_conntrack_max": 65536, "nf_conntrack_buckets": "auto"}, 16384),
        ({}, {"nf_conntrack_max": 2048, "nf_conntrack_buckets": "auto"}, 1024),  # the floor
        ({}, {"nf_conntrack_max": 65536, "nf_conntrack_buckets": 512}, 512),  # as given
        ({"host": {"nf_conntrack_max": 40000}}, {"nf_conntrack_buckets": "auto"}, 10000),
        (
            {"host": {"nf_conntrack_max": 40000}, "node_sysctls": {"nf_conntrack_max": 80000}},
            {"nf_conntrack_buckets": "auto"},
            20000,  # node_sysctls' max wins over host's
        ),
    ],
)
def test_buckets_rule(top: dict[str, Any], block: dict[str, Any], want: int) -> None:
    s = scenario({"remediations": [{"kind": "conntrack-sysctls", **block}]}, **top)
    assert plan_phase(s, s.phases[0]).sysctls.buckets == want


def test_auto_buckets_without_any_max_is_bad_input_naming_the_field() -> None:
    s = scenario({"remediations": [{"kind": "conntrack-sysctls", "nf_conntrack_buckets": "auto"}]})
    with pytest.raises(BadInput) as e:
        plan_phase(s, s.phases[0])
    assert e.value.field == "phases[0].remediations[0].nf_conntrack_buckets"
    s2 = scenario({}, node_sysctls={"nf_conntrack_buckets": "auto"})
    with pytest.raises(BadInput) as e2:
        plan_run(s2)
    assert e2.value.field == "node_sysctls.nf_conntrack_buckets"


def test_run_buckets_auto_follows_the_host_max() -> None:
    s = scenario({}, host={"nf_conntrack_max": 8192}, node_sysctls={"nf_conntrack_buckets": "auto"})
    assert plan_run(s).sysctls == SysctlPlan(buckets=2048)


# --- the host's buckets follow its shrunk max -------------------------------------------------
@pytest.mark.parametrize(
    ("host", "want"),
    [
        ({}, None),  # the run leaves the host's table alone
        ({"nf_conntrack_max": 16384}, 16384),  # one bucket per entry, as the kernel's default
        ({"nf_conntrack_max": 256}, 1024),  # never below the floor
        ({"nf_conntrack_max": 16384, "nf_conntrack_buckets": "auto"}, 4096),  # kube-proxy's max/4
        ({"nf_conntrack_max": 16384, "nf_conntrack_buckets": 65536}, 65536),  # as given
    ],
)
def test_host_buckets_keep_a_real_nodes_density(host: dict[str, Any], want: int | None) -> None:
    from harness.plan.sysctls import host_buckets

    s = scenario({}, host=host)
    assert host_buckets(s) == want


@pytest.mark.parametrize(
    ("top", "want"),
    [
        ({"node_sysctls": {"nf_conntrack_max": 16384}}, 16384),  # one bucket per entry
        ({"node_sysctls": {"nf_conntrack_max": 256}}, 1024),  # never below the floor
        ({"node_sysctls": {"nf_conntrack_max": 16384, "nf_conntrack_buckets": "auto"}}, 4096),
        ({"node_sysctls": {"nf_conntrack_max": 16384, "nf_conntrack_buckets": 512}}, 512),
        # node_sysctls' max wins over host's, and so does its density
        (
            {"host": {"nf_conntrack_max": 4096}, "node_sysctls": {"nf_conntrack_max": 32768}},
            32768,
        ),
        ({"node_sysctls": {"tcp_timeout_time_wait": 30}}, None),  # no max: buckets left alone
    ],
)
def test_node_sysctls_max_keeps_a_real_nodes_density(top: dict[str, Any], want: int | None) -> None:
    """A run-wide max given in ``node_sysctls`` used to keep this host's 262,144 buckets
    whatever its size (0.06 entries per bucket for a full 16,384-entry table)."""
    s = scenario({}, **top)
    sysctls = plan_run(s).sysctls
    assert sysctls.buckets == want
    if want is not None:
        assert sysctls.global_values()[CT + "buckets"] == want


def test_host_buckets_auto_without_a_max_names_the_field() -> None:
    from harness.plan.sysctls import host_buckets

    s = scenario({}, host={"nf_conntrack_buckets": "auto"})
    with pytest.raises(BadInput) as e:
        host_buckets(s)
    assert e.value.field == "host.nf_conntrack_buckets"
