"""What every backend offers the runner.

A backend turns the run's plan (:class:`harness.plan.RunPlan`, made once by the runner with
:func:`harness.plan.phase.plan_run`; a backend never sees the scenario) into a running cluster
(a context manager that cleans up on every exit path), realizes a phase's plan (another
context manager that reverts it and yields the :class:`harness.plan.PhasePlan`), drives the
plan's load from the client pods and returns raw measurements, and captures evidence for bug
bundles. The runner is backend-agnostic: result.json has the same shape whichever backend
produced it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.kernel.journal import Journal
from harness.kernel.sysctl import SysctlGuard
from harness.measurement import PhaseMeasurement
from harness.plan.types import PhasePlan, RunPlan
from harness.results.evidence import Evidence

# phase name, seconds elapsed, seconds planned, live figures (e.g. {"conntrack": {...}, "max": N})
Progress = Callable[[str, float, float, dict[str, Any]], None]


@dataclass(frozen=True)
class BackendOptions:
    """Command-line options that only some backends use."""

    keep_cluster: bool = False
    allow_disruptive: bool = False
    kubeconfig: str | None = None
    loadgen_image: str | None = None
    capture_pcap: bool = False  # netns, kind: tcpdump in the client pods, unanswered pairs kept
    # kubeconfig: the images the nodes pull for these roles (--image ROLE=REF; IMAGE_ROLES)
    images: dict[str, str] = field(default_factory=dict)
    # backend-specific settings by name. KUBERNETES_RELEASE ("kubernetes"): netns runs this
    # pinned Kubernetes release (versions.toml) instead of the default; `compare --run` sets it
    extra: dict[str, str] = field(default_factory=dict)


KUBERNETES_RELEASE = "kubernetes"  # BackendOptions.extra key: the netns cluster's release
# BackendOptions.extra key: netns runs kube-proxy alone from this pinned release, beside the
# control plane and CoreDNS of KUBERNETES_RELEASE (`compare --run --parts kube-proxy`)
KUBE_PROXY_RELEASE = "kube_proxy_release"


class Cluster(Protocol):
    """A realized cluster. Enter it to build; exit to tear down (on every path)."""

    backend: str

    def __enter__(self) -> Cluster: ...

    def __exit__(self, *exc: object) -> None: ...

    def nodes(self) -> list[str]: ...

    def apply_node_sysctls(self) -> None:
        """The scenario's node_sysctls, for the whole run (reverted by the guard)."""
        ...

    def components(self) -> dict[str, dict[str, str]]:
        """The upstream parts the cluster runs, by name: version, and where known mode,
        source or image (``environment.components`` in result.json)."""
        ...

    def phase(self, plan: PhasePlan) -> AbstractContextManager[PhasePlan]:
        """Realize the phase's plan (remediations, faults, its CoreDNS and NodeLocal; the
        runner planned it once, :func:`harness.plan.phase.plan_run`); yield it; revert on exit."""
        ...

    def reset(self) -> None:
        """Cheap reset between phases or tests: flush the nodes' conntrack tables."""
        ...

    def measure(self, plan: PhasePlan, progress: Progress | None) -> PhaseMeasurement:
        """Reset per-phase state, run the plan's load, and return what was measured."""
        ...

    def evidence(self) -> Evidence:
        """What the bug bundle keeps, in the one layout every backend uses: per-node
        iptables-save and conntrack -S, per-pod (and per-phase) resolv.conf, --pcap captures."""
        ...


ClusterFactory = Callable[[RunPlan, str, Journal, SysctlGuard, BackendOptions], Cluster]
