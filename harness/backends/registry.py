"""Backend name -> cluster factory. Imports are lazy: the kube backends need extra packages."""

from __future__ import annotations

from harness.backends.base import BackendOptions, Cluster
from harness.errors import BadInput
from harness.kernel.journal import Journal
from harness.kernel.sysctl import SysctlGuard
from harness.scenario.model import Scenario

BACKENDS = ("netns", "kind", "kubeconfig", "k3s")


def make_cluster(
    backend: str,
    scenario: Scenario,
    *,
    run_id: str,
    journal: Journal,
    guard: SysctlGuard,
    options: BackendOptions,
) -> Cluster:
    if backend == "netns":
        from harness.backends.netns.cluster import NetnsCluster

        return NetnsCluster(scenario, run_id, journal, guard)
    if backend in BACKENDS:
        raise BadInput(
            "this backend is not wired into the runner yet (see docs/backends.md)",
            field="--backend",
            value=backend,
            allowed=["netns"],
        )
    raise BadInput("unknown backend", field="--backend", value=backend, allowed=list(BACKENDS))
