"""(Scenario, Phase) -> PhasePlan: the one place that says what a remediation or fault means.

Pure: no I/O, but for :func:`plan_run` reading the user's Corefile once, so that no backend
reads a scenario's file. Every backend realizes the plan this returns and never looks at a
remediation class itself. The ``match`` in :func:`plan_phase` is exhaustive (mypy checks the
``assert_never``): a new remediation kind does not type-check until it is planned here.
"""

from __future__ import annotations

from pathlib import Path
from typing import assert_never

from cthcommon.errors import BadInput
from harness.dataplane.faults import race_percent
from harness.plan import kubelet
from harness.plan import sysctls as S
from harness.plan.locust import plan_locust
from harness.plan.types import (
    CONNTRACK_ACCT,
    ClusterPlan,
    CoreDNSPlan,
    CorefilePlan,
    DNSLoadPlan,
    EventPlan,
    HostPlan,
    HTTPLoadPlan,
    KubeProxyPlan,
    KubeProxyRestartPlan,
    LoadPlan,
    PhasePlan,
    RaceFaultPlan,
    RolloutPlan,
    RunPlan,
    SamePortUDPPlan,
    ScalePlan,
    ServiceRecreatePlan,
    StatsdLoadPlan,
    SysctlPlan,
)
from harness.scenario.corefile import read_text
from harness.scenario.model import (
    FQDN,
    ClusterSpec,
    ConntrackSysctls,
    CoreDNSChange,
    LoadSpec,
    NodeLocalDNS,
    Phase,
    PhaseEvent,
    Pooling,
    RaceWindowFault,
    ResolverOption,
    Scenario,
)


def base_coredns(scenario: Scenario) -> CoreDNSPlan:
    spec = scenario.cluster.coredns
    # a user's Corefile runs as written unless the scenario sets cache explicitly
    own = spec.corefile is not None and "cache" not in spec.model_fields_set
    return CoreDNSPlan(
        cache=None if own else spec.cache,
        max_concurrent=spec.max_concurrent,
        replicas=spec.replicas,
        corefile=spec.corefile,
    )


def kube_proxy(scenario: Scenario) -> KubeProxyPlan:
    c = scenario.cluster
    return KubeProxyPlan(
        mode=c.kube_proxy.mode, masquerade_all=c.masquerade_all, version=c.kube_proxy.version
    )


def plan_load(scenario: Scenario, load: LoadSpec, *, fqdn: bool, pooling: int | None) -> LoadPlan:
    c = scenario.cluster
    dns = None
    if load.dns is not None:
        d = load.dns
        names, group, expanded = kubelet.expand_names(d.names, int(d.rate * load.duration_s))
        if fqdn:
            names = tuple(
                kubelet.absolute_name(
                    n, namespace=c.namespace, domain=c.cluster_domain, external=c.external_names
                )
                for n in names
            )
        dns = DNSLoadPlan(
            resolver=d.resolver,
            rate=d.rate,
            names=names,
            group=group,
            expanded=expanded,
            pattern=d.pattern,
            burst_on_s=d.burst_on_s,
            burst_off_s=d.burst_off_s,
            workers=d.workers,
            lookups_per_process=d.lookups_per_process,
            family=d.family,
        )
    http = locust = None
    if load.http is not None:
        locust = plan_locust(load.http)
    if load.http is not None and locust is None:
        h = load.http
        http = HTTPLoadPlan(
            mode="pooled" if pooling is not None else h.mode,
            rate=h.rate,
            pool_size=pooling if pooling is not None else h.pool_size,
            connect_timeout_s=h.connect_timeout_s,
            max_in_flight=h.max_in_flight,
            workers=h.workers,
        )
    udp = None
    if load.udp is not None:
        udp = SamePortUDPPlan(rate=load.udp.rate, name=load.udp.name, timeout_s=load.udp.timeout_s)
    statsd = StatsdLoadPlan(rate=load.statsd.rate) if load.statsd is not None else None
    return LoadPlan(
        duration_s=load.duration_s,
        dns=dns,
        http=http,
        locust=locust,
        udp=udp,
        statsd=statsd,
        warmup=load.warmup,
    )


def client_node(scenario: Scenario) -> str:
    """The scenario node the client pods run on (default: the first)."""
    return scenario.cluster.client_node or "node-1"  # as plan_cluster resolves it


def plan_fault(scenario: Scenario, faults: list[RaceWindowFault]) -> RaceFaultPlan | None:
    """Several race-window faults in one phase are one rule: the highest probability, CPUs
    pinned if any asks for it (two tables would drop the same pair twice)."""
    if not faults:
        return None
    p = max(f.probability for f in faults)
    return RaceFaultPlan(
        probability=p,
        percent=race_percent(p),
        pin_cpus=any(f.pin_cpus for f in faults),
        nodes=(client_node(scenario),),
    )


def plan_phase(scenario: Scenario, phase: Phase) -> PhasePlan:
    where = f"phases[{scenario.phases.index(phase)}]" if phase in scenario.phases else phase.name
    pooling: int | None = None
    fqdn = False
    nodelocal = False
    options: list[tuple[str, str | None]] = []
    sysctls = SysctlPlan()
    coredns = base_coredns(scenario)
    for i, r in enumerate(phase.remediations):
        match r:
            case Pooling():
                pooling = r.pool_size
            case ConntrackSysctls():
                step = S.remediation_sysctls(r, scenario, f"{where}.remediations[{i}]")
                sysctls = S.merge(sysctls, step)
            case ResolverOption():
                options += [(o.name, o.value) for o in r.options]
            case NodeLocalDNS():
                nodelocal = True
            case FQDN():
                fqdn = True
            case CoreDNSChange():
                coredns = CoreDNSPlan(
                    cache=coredns.cache if r.cache is None else r.cache,
                    max_concurrent=coredns.max_concurrent
                    if r.max_concurrent is None
                    else r.max_concurrent,
                    replicas=coredns.replicas if r.replicas is None else r.replicas,
                    corefile=coredns.corefile,  # the remediation edits the scenario's Corefile
                )
            case _:
                assert_never(r)
    fault = plan_fault(scenario, phase.faults)
    if fault is not None:
        # 'ct original packets' in the fault rule needs per-entry packet accounting
        sysctls = S.merge(sysctls, SysctlPlan(per_node=((CONNTRACK_ACCT, 1),)))
    c = scenario.cluster
    pod_dns = kubelet.pod_dns(
        c.dns_config,
        namespace=c.namespace,
        domain=c.cluster_domain,
        nodelocal=nodelocal,
        extra_options=options,
    )
    return PhasePlan(
        name=phase.name,
        remediations=tuple(r.kind for r in phase.remediations),
        pod_dns=pod_dns,
        fqdn=fqdn,
        load=plan_load(scenario, scenario.phase_load(phase), fqdn=fqdn, pooling=pooling),
        sysctls=sysctls,
        fault=fault,
        coredns=coredns,
        nodelocal=nodelocal or c.nodelocal_dns,
        kube_proxy=kube_proxy(scenario),
        rollout=RolloutPlan(phase.rollout.at_s) if phase.rollout is not None else None,
        events=tuple(event_plan(e) for e in phase.events),
    )


def event_plan(e: PhaseEvent) -> EventPlan:
    if e.scale is not None:
        return ScalePlan(e.at_s, e.scale.deployment, e.scale.replicas)
    if e.restart_kube_proxy is not None:
        return KubeProxyRestartPlan(e.at_s, e.restart_kube_proxy.node)
    assert e.recreate_service is not None
    return ServiceRecreatePlan(e.at_s, e.recreate_service.service, e.recreate_service.down_s)


def coredns_pods_needed(plan: PhasePlan) -> int:
    """CoreDNS pods a phase can need (pure): a rollout brings up as many new pods (new IPs) as
    run; a scale-up brings up new pods (new IPs) beside the phase's own, as a Deployment does."""
    n = plan.coredns.replicas * (2 if plan.rollout else 1)
    ups = [
        e.replicas for e in plan.events if isinstance(e, ScalePlan) and e.deployment == "coredns"
    ]
    return max([n, *(plan.coredns.replicas + r for r in ups)])


def read_corefile(path: str) -> CorefilePlan:
    """The user's Corefile, read once (unreadable, or no longer a Corefile's text: bad input)."""
    try:
        return CorefilePlan(source=path, text=read_text(Path(path)))
    except ValueError as e:
        raise BadInput(str(e), field="cluster.coredns.corefile", source=path) from None


def plan_cluster(spec: ClusterSpec) -> ClusterPlan:
    """The scenario's cluster with its defaults resolved (the user's Corefile read)."""
    last = f"node-{spec.nodes}"
    corefile = spec.coredns.corefile
    return ClusterPlan(
        nodes=spec.nodes,
        client_pods=spec.client_pods,
        client_node=spec.client_node or "node-1",
        coredns_node=spec.coredns.node or last,
        coredns_replicas=spec.coredns.replicas,
        http_replicas=spec.http_server.replicas,
        http_node=spec.http_server.node or last,
        masquerade_all=spec.masquerade_all,
        namespace=spec.namespace,
        cluster_domain=spec.cluster_domain,
        upstream_latency_ms=spec.upstream_latency_ms,
        external_names=dict(spec.external_names),
        corefile=read_corefile(corefile) if corefile is not None else None,
    )


def external_lookups(scenario: Scenario) -> bool:
    """Does any phase look up one of the names the scenario's upstream is meant to answer
    (as the scenario writes its names)?"""
    external = {n.rstrip(".") for n in scenario.cluster.external_names}
    for p in scenario.phases:
        dns = scenario.phase_load(p).dns
        if dns is not None and any(n.rstrip(".") in external for n in dns.names):
            return True
    return False


def plan_run(scenario: Scenario) -> RunPlan:
    """Every phase planned up front, so bad input (exit 2) is found before anything is built."""
    phases = tuple(plan_phase(scenario, p) for p in scenario.phases)
    base = base_coredns(scenario)
    return RunPlan(
        scenario=scenario.name,
        cluster=plan_cluster(scenario.cluster),
        host=HostPlan(
            conntrack_max=scenario.host.nf_conntrack_max, buckets=S.host_buckets(scenario)
        ),
        sysctls=S.run_sysctls(scenario),
        coredns=base,
        kube_proxy=kube_proxy(scenario),
        nodelocal=scenario.cluster.nodelocal_dns,
        max_coredns_replicas=max([base.replicas, *(coredns_pods_needed(p) for p in phases)]),
        phases=phases,
        external_lookups=external_lookups(scenario),
    )
