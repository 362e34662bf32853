"""One phase's steady state on any backend: the model from the phase's load and the timeouts in
force on the client node, and the aged warm-up (:class:`harness.steady.warmup.AgedWarmup`)
that brings the tables there before the load and assesses the phase after it.

The backends give only what their node access has: the client node's timeouts (read in its
namespace, :func:`node_timeouts`, where it is this host's: netns and kind; by command on a
real node), the nodes' and client pods' namespaces for the warm-up, and, where the nodes'
namespaces cannot be reached from here, the label that says why the phase starts on a flushed
table (:func:`no_warmup_on`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from cthcommon.resolvconf import ResolvConf
from harness.kernel import sysctl
from harness.plan.types import LoadPlan
from harness.results.schema import SteadyStateResult
from harness.steady.model import Timeouts, phase_model
from harness.steady.warmup import AgedWarmup

CT = "net.netfilter.nf_conntrack_"
# a gap from the warm-up's end to the load's start longer than this is not the backend's
# usual start-up (a first phase's image pull, say): the next phase does not plan with it
GAP_KEPT_S = 10.0


def node_timeouts(ns: str) -> Timeouts:
    """The conntrack timeouts in force in a node's namespace (a name or a path)."""

    def r(key: str) -> float:
        return float(sysctl.read(CT + key, ns))

    return Timeouts(
        tcp_time_wait=r("tcp_timeout_time_wait"),
        tcp_close=r("tcp_timeout_close"),
        udp=r("udp_timeout"),
        udp_stream=r("udp_timeout_stream"),
    )


def known_names(cluster_domain: str, namespace: str, external: Iterable[str]) -> set[str]:
    """The names the cluster answers: the two Services (kube-dns, and the HTTP server in the
    run's namespace) and the scenario's external names (pure)."""
    services = [
        f"kube-dns.kube-system.svc.{cluster_domain}",
        f"http-server.{namespace}.svc.{cluster_domain}",
    ]
    return {n.rstrip(".").lower() for n in [*services, *external]}


def phase_steady(
    load: LoadPlan,
    *,
    names: Sequence[str],
    resolv: ResolvConf,
    table_max: int,
    timeouts: Timeouts,
    known: set[str],
    nodelocal: bool,
) -> AgedWarmup:
    """The phase's steady state in the client node's table (the whole phase's load; on a
    backend that splits it over pods, each pod's worker plan carries a share of it with the
    same names), with the aged warm-up its load asks for."""
    model = phase_model(
        load,
        table_max=table_max,
        timeouts=timeouts,
        resolv=resolv,
        names=list(names),
        known=known.__contains__,
        nodelocal=nodelocal,
    )
    return AgedWarmup(model, load.warmup)


def http_mode(load: LoadPlan) -> str:
    return load.http.mode if load.http is not None else "short-lived"


def next_startup_s(result: SteadyStateResult, previous: float) -> float:
    """What the next phase's warm-up plans for the gap to its load: this phase's measured gap,
    when it is the backend's usual start-up (pure)."""
    gap = result.get("warmup", {}).get("gap_to_load_s")
    return gap if isinstance(gap, float) and 0 < gap < GAP_KEPT_S else previous


def natural_label(why: str) -> str:
    """The label of a natural start the model asked a warm-up for, saying why there was none."""
    return f"natural: no warm-up ({why}; the phase starts on a flushed table)"


def no_warmup_on(backend: str) -> str:
    return natural_label(
        f"the {backend} backend cannot reach its nodes' network namespaces from this host, so "
        "it has no aged warm-up"
    )


def load_start(started: Sequence[float], sampler_t0: float) -> float | None:
    """When the first pod's load began, on the sampler's clock (the pods' CLOCK_MONOTONIC is
    the host's where they share its kernel). None when no pod said."""
    return round(min(started) - sampler_t0, 3) if started else None
