"""One phase's steady state on a Kubernetes backend: the model and the assessment the netns
backend uses (:mod:`harness.steady`, :mod:`harness.steady.result`), and the same aged
warm-up (:mod:`harness.steady.warmup`) where the nodes share this kernel (kind).

Where the nodes' namespaces cannot be reached from here (an existing cluster's nodes), each
phase starts on a flushed table, so a load whose entries live longer than the phase (TIME_WAIT
120 s, say) never turns its table over while it is measured. Such a phase is reported
``inconclusive`` with the reason, and a comparison against it cannot read "fixed"
(:func:`harness.steady.gate_comparison`).
"""

from __future__ import annotations

from collections.abc import Sequence

from cthcommon.errors import BackendError
from cthcommon.resolvconf import ResolvConf
from harness.plan.types import ClusterPlan, PhasePlan
from harness.steady.model import SteadyState, Timeouts, phase_model
from loadgen.worker import WorkerPlan

# Timeouts field -> the node's sysctl file, in the order node_timeouts_argv reads them
TIMEOUT_FILES = {
    "tcp_time_wait": "nf_conntrack_tcp_timeout_time_wait",
    "tcp_close": "nf_conntrack_tcp_timeout_close",
    "udp": "nf_conntrack_udp_timeout",
    "udp_stream": "nf_conntrack_udp_timeout_stream",
}
TIMEOUTS_ARGV = ["cat", *(f"/proc/sys/net/netfilter/{f}" for f in TIMEOUT_FILES.values())]


def natural_label(why: str) -> str:
    """The label of a natural start the model asked a warm-up for, saying why there was none."""
    return f"natural: no warm-up ({why}; the phase starts on a flushed table)"


def no_warmup_on(backend: str) -> str:
    return natural_label(
        f"the {backend} backend cannot reach its nodes' network namespaces from this host, so "
        "it has no aged warm-up"
    )


def parse_timeouts(text: str) -> Timeouts:
    """Output of :data:`TIMEOUTS_ARGV` in a node: one integer a line."""
    vals = text.split()
    if len(vals) != len(TIMEOUT_FILES) or not all(v.isdigit() for v in vals):
        raise BackendError("unexpected conntrack timeout output", text=text[:200])
    return Timeouts(**{k: float(v) for k, v in zip(TIMEOUT_FILES, vals, strict=True)})


def known_names(cluster: ClusterPlan, namespace: str) -> set[str]:
    """The names the cluster answers: the two Services (in the run's namespace) and the
    scenario's external names."""
    d = cluster.cluster_domain
    services = [f"kube-dns.kube-system.svc.{d}", f"http-server.{namespace}.svc.{d}"]
    return {n.rstrip(".").lower() for n in [*services, *cluster.external_names]}


def model(
    plan: PhasePlan,
    worker: WorkerPlan,
    *,
    resolv: ResolvConf,
    timeouts: Timeouts,
    table_max: int,
    known: set[str],
) -> SteadyState:
    """The phase's steady state in the client node's table (the whole phase's load; each
    pod's worker plan carries a share of it, with the same names). ``known``: the names the
    cluster answers (:func:`known_names`)."""
    return phase_model(
        plan.load,
        table_max=table_max,
        timeouts=timeouts,
        resolv=resolv,
        names=list(worker.dns.plan.names) if worker.dns is not None else [],
        known=known.__contains__,
        nodelocal=plan.nodelocal,
    )


def load_start(started: Sequence[float], sampler_t0: float) -> float | None:
    """When the first pod's load began, on the sampler's clock (the pods' CLOCK_MONOTONIC is
    the host's: node containers share its kernel). None when no pod said."""
    return round(min(started) - sampler_t0, 3) if started else None
