"""One phase's steady state on the netns backend: the model from the phase's load and the
timeouts in force, the warm-up before the load, and the assessment after it.

``cluster.py`` calls :meth:`PhaseSteady.prepare` before the sampler starts and
:meth:`PhaseSteady.finish` once the load is done; the result is ``steady_state`` in
result.json (``harness.result.SteadyStateResult``).
"""

from __future__ import annotations

from typing import Any

from cthcommon.resolvconf import ResolvConf
from harness.backends.netns import topologyplan as P
from harness.backends.netns.topologyplan import TopologyPlan
from harness.backends.stages import Stages
from harness.kernel import sysctl
from harness.kernel.sampler import NodeSeries
from harness.plan.types import LoadPlan
from harness.results.schema import SteadyStateResult
from harness.steady.model import SteadyState, Timeouts, phase_model
from harness.steady.warmup import AgedWarmup, WarmupTargets

CT = "net.netfilter.nf_conntrack_"


def node_timeouts(ns: str) -> Timeouts:
    def r(key: str) -> float:
        return float(sysctl.read(CT + key, ns))

    return Timeouts(
        tcp_time_wait=r("tcp_timeout_time_wait"),
        tcp_close=r("tcp_timeout_close"),
        udp=r("udp_timeout"),
        udp_stream=r("udp_timeout_stream"),
    )


def known_names(plan: TopologyPlan) -> set[str]:
    d = plan.cluster_domain
    services = [f"kube-dns.kube-system.svc.{d}", f"http-server.{plan.namespace}.svc.{d}"]
    return {n.rstrip(".").lower() for n in [*services, *plan.external_names]}


class PhaseSteady:
    """The steady state of one phase: build with the phase's load and settings."""

    def __init__(
        self,
        plan: TopologyPlan,
        load: LoadPlan,
        *,
        names: list[str],
        resolv: ResolvConf,
        table_max: int,
    ) -> None:
        self.plan = plan
        self.load = load
        self.client_node = plan.node(plan.role("client")[0].node).ns
        self.model: SteadyState = phase_model(
            load,
            table_max=table_max,
            timeouts=node_timeouts(self.client_node),
            resolv=resolv,
            names=names,
            known=known_names(plan).__contains__,
            nodelocal=P.NODELOCAL_IP in resolv.nameservers,
        )
        self.http_mode = load.http.mode if load.http is not None else "short-lived"
        self.aged = AgedWarmup(self.model, load.warmup)

    @property
    def warmup(self) -> dict[str, Any] | None:
        return self.aged.report

    def prepare(
        self, guard: sysctl.SysctlGuard, *, startup_s: float, stages: Stages | None = None
    ) -> None:
        """Warm the table up to the model's steady state (:mod:`harness.steady.warmup`: unless the
        load says ``warmup: none``, the steady state is far below the limit, or the model does
        not know the whole load: a locustfile's); read the remaining lifetimes back right
        after."""
        if not self.aged.wanted:
            return
        targets = WarmupTargets(
            client_ns=tuple(p.ns for p in self.plan.role("client")),
            node_ns=tuple(n.ns for n in self.plan.nodes),
            http_ip=P.HTTP_SERVICE_IP,
            dns_ip=P.DNS_SERVICE_IP,
            dns_name=f"http-server.{self.plan.namespace}.svc.{self.plan.cluster_domain}.",
            http_mode=self.http_mode,
        )
        with (stages or Stages()).stage("warm-up: the aged fill"):
            self.aged.run(targets, guard, read_ns=self.client_node, startup_s=startup_s)

    def finish(
        self,
        series: dict[str, NodeSeries],
        *,
        sampler_t0: float,
        load_start_s: float,
        out: dict[str, Any],
    ) -> SteadyStateResult:
        return self.aged.result(
            series,
            sampler_t0=sampler_t0,
            load_start_s=load_start_s,
            duration_s=self.load.duration_s,
            dns_timeline=out.get("dns", {}).get("timeline", []),
        )
