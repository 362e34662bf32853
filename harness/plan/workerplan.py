"""PhasePlan -> WorkerPlan: the load one worker process runs (pure, the same for every backend).

The netns backend runs one worker for all client pods (``share=(0, 1)``); a cluster backend
runs one in each client pod (``share=(i, n)``): the rates and ``max_in_flight`` are split
evenly over the ``n`` workers, and with ``{n}`` names every worker gets its own indices.

Every backend drains DNS the same way, "first-timeout" (``loadgen.dns.types.Drain``): once
every lookup has started, a lookup that has waited one full resolver timeout is a timeout
whatever follows, so the phase stops waiting for it and records it as ``unfinished``. (kind
used to wait for each to end, up to ``timeout * attempts`` per search candidate: 20-25 s more
per phase, and answers after the load had stopped counted as answers there, not on netns.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cthcommon.errors import BadInput
from harness.plan.locustwork import locust_work
from harness.plan.types import PhasePlan
from loadgen.dns.types import DNSPlan, Drain
from loadgen.http.plan import HTTPPlan, HTTPTarget
from loadgen.udp.sameport import SamePortPlan, SamePortPod
from loadgen.udp.statsd import StatsdPlan
from loadgen.worker import DNSWork, HTTPWork, PodSpec, StatsdWork, UDPWork, WorkerPlan


def _same(name: str) -> str:
    return name


def worker_plan(
    plan: PhasePlan,
    pods: Sequence[PodSpec],
    http_targets: Sequence[HTTPTarget],
    *,
    share: tuple[int, int] = (0, 1),
    pod: str = "",
    map_name: Callable[[str], str] = _same,
    drain: Drain = "first-timeout",
    locust_target: str | None = None,
    dns_service_ip: str | None = None,
) -> WorkerPlan:
    """``map_name``: the scenario's namespace onto the backend's (identity on netns).
    ``locust_target``: the http-server Service address a locustfile load aims at (a backend
    that gives none cannot run one). ``dns_service_ip``: the kube-dns ClusterIP the same-port
    UDP client sends to (a backend that gives none cannot run it)."""
    index, count = share
    load = plan.load
    dns = http = None
    if load.dns is not None:
        d = load.dns
        dns = DNSWork(
            pods=tuple(pods),
            plan=DNSPlan(
                rate=d.rate / count,
                duration_s=load.duration_s,
                names=[map_name(n) for n in d.names_for(index, count)],
                resolver=d.resolver,
                lookups_per_process=d.lookups_per_process,
                pattern=d.pattern,
                burst_on_s=d.burst_on_s,
                burst_off_s=d.burst_off_s,
                workers=d.workers,
                drain=drain,
                family=d.family,
            ),
        )
    if load.http is not None:
        h = load.http
        http = HTTPWork(
            targets=tuple(http_targets),
            plan=HTTPPlan(
                mode=h.mode,
                rate=h.rate / count,
                duration_s=load.duration_s,
                pool_size=h.pool_size,
                connect_timeout_s=h.connect_timeout_s,
                max_in_flight=max(1, h.max_in_flight // count),
            ),
            workers=h.workers,
        )
    locust = None
    if load.locust is not None:
        if locust_target is None:
            raise BadInput(
                "this backend cannot run a locustfile yet (netns only)",
                field="load.http.locustfile",
            )
        locust = locust_work(load.locust, load.duration_s, pods, locust_target)
    udp = statsd = None
    if load.udp is not None:
        udp = UDPWork(
            pods=same_port_pods(pods),
            plan=SamePortPlan(
                target=_dns_target(dns_service_ip, "the same-port UDP client", "load.udp"),
                rate=load.udp.rate,
                name=load.udp.name,
                timeout_s=load.udp.timeout_s,
                duration_s=load.duration_s,
            ),
        )
    if load.statsd is not None:
        statsd = StatsdWork(
            pods=same_port_pods(pods),
            plan=StatsdPlan(
                target=_dns_target(dns_service_ip, "the statsd sender", "load.statsd"),
                rate=load.statsd.rate,
                duration_s=load.duration_s,
            ),
        )
    return WorkerPlan(
        duration_s=load.duration_s,
        dns=dns,
        http=http,
        locust=locust,
        udp=udp,
        statsd=statsd,
        phase=plan.name,
        pod=pod,
    )


def same_port_pods(pods: Sequence[PodSpec]) -> tuple[SamePortPod, ...]:
    """The client pods as the same-port client and the statsd sender address them."""
    return tuple(SamePortPod(p.netns, p.ip) for p in pods)


def _dns_target(dns_service_ip: str | None, what: str, field: str) -> str:
    """kube-dns's ClusterIP for a sender aimed at it; a backend that gives none cannot run it."""
    if dns_service_ip is None:
        raise BadInput(f"this backend cannot run {what} yet (netns only)", field=field)
    return dns_service_ip
