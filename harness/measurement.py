"""One phase's raw measurements, as any backend reports them to the result builder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from cthcommon.resolvconf import ResolvConf
from harness.kernel.sampler import NodeSeries

if TYPE_CHECKING:
    from harness.kernel.sampler import ConntrackSampler
    from harness.results.endpoints import EndpointsResult
    from harness.results.kubeproxy import KubeProxyPhase
    from harness.results.rollout import RolloutResult
    from harness.results.schema import CaptureResult, FaultResult, SteadyStateResult
    from harness.results.statsd import StatsdPhase
    from loadgen.udp.sameport import SamePortResult
    from loadgen.worker import WorkerResult


@dataclass
class Observed:
    """What a phase observed beside its load and counters, each section typed as it lands in
    result.json (None: the phase had none). Every backend fills the same type, and the result
    builder (:func:`harness.results.build.build_phase_result`) is the one place that puts it
    into a phase's result."""

    load_start_s: float | None = None  # when the load began, on the sampler's timeline
    steady_state: SteadyStateResult | None = None
    fault: FaultResult | None = None  # the injected race-window drop
    capture: CaptureResult | None = None  # --pcap (netns)
    rollout: RolloutResult | None = None  # a CoreDNS rollout during the load (netns)
    udp: SamePortResult | None = None  # the same-port UDP client (netns)
    endpoints: EndpointsResult | None = None  # endpoint events, stale entries (netns)
    statsd: StatsdPhase | None = None  # the one-way sender, counted at the receivers (netns)
    kube_proxy: KubeProxyPhase | None = None  # its syncs, reconciles, RSS (netns)
    sample_hz: float | None = None  # how often the nodes' tables were read (kube backends)
    # what this backend could not measure: field -> why
    unavailable: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what bears on reading the figures


@dataclass
class PhaseMeasurement:
    """Raw measurements of one phase, before they are shaped into result.json."""

    load: WorkerResult  # the load's workers' results, merged over the pods
    series: dict[str, NodeSeries]
    node_counters: dict[str, dict[str, int]]
    server_counters: dict[str, int]
    conntrack_max: int
    duration_s: float
    resolv: ResolvConf
    sampler_cpu_s: float
    observed: Observed = field(default_factory=Observed)
    kernel: str = ""

    @classmethod
    def sampled(
        cls,
        sampler: ConntrackSampler,
        load: WorkerResult,
        *,
        conntrack_max: int,
        resolv: ResolvConf,
        observed: Observed,
        kernel: str,
        counters: tuple[dict[str, dict[str, int]], dict[str, int]] | None = None,
    ) -> PhaseMeasurement:
        """A phase's measurement around its sampler's record, on every backend: each node's
        series, the span sampled and the sampler's own CPU. ``counters``: the nodes' and the
        DNS servers' counter deltas; a backend that cannot read them passes none and says
        why in ``observed.unavailable``."""
        nodes, servers = counters or ({n: {} for n in sampler.series}, {"rx": 0, "tx": 0})
        return cls(
            load=load,
            series=sampler.series,
            node_counters=nodes,
            server_counters=servers,
            conntrack_max=conntrack_max,
            duration_s=sampler.duration,
            resolv=resolv,
            sampler_cpu_s=sampler.cpu_s,
            observed=observed,
            kernel=kernel,
        )
