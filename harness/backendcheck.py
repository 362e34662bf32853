"""The refusals a run makes for a (backend, scenario) before anything is touched.

The backend's flags (:func:`harness.backends.registry.check_options`), the scenario fields a
backend cannot honour (:func:`check_cluster_fields`: the one place that reads the scenario for
a backend, so that no backend does), and what the backend refuses of the run's plan
(:func:`harness.backends.registry.check_plan`), in that order.
"""

from __future__ import annotations

from cthcommon.errors import BadInput
from harness.backends.base import BackendOptions
from harness.backends.registry import check_options, check_plan
from harness.plan.phase import plan_run
from harness.plan.types import RunPlan
from harness.scenario.model import Scenario
from harness.upstream import default_version


def check_backend(
    backend: str, scenario: Scenario, options: BackendOptions, plan: RunPlan | None = None
) -> None:
    """Refusals that need nothing but the arguments: run before any host or cluster change.
    ``plan``: the scenario's run plan when the caller made it already."""
    check_options(backend, options)
    check_cluster_fields(backend, scenario)
    check_plan(backend, plan or plan_run(scenario), options)


def check_cluster_fields(backend: str, scenario: Scenario) -> None:
    """Scenario fields a backend cannot honour are refused, never silently ignored.

    - ``phases[].rollout`` rolls the embedded cluster's CoreDNS; ``phases[].events`` scale it.
    - ``load.udp``, the same-port client, and ``load.statsd``, the one-way sender, run in the
      netns worker only.
    - ``cluster.coredns.corefile`` runs the user's Corefile on the netns backend's CoreDNS;
      a cluster backend keeps the cluster's own CoreDNS ConfigMap.
    - ``cluster.kube_proxy``: kind honours the mode (kind's ``kubeProxyMode``) and runs the
      node image's release, the default pinned one; kubeconfig runs the cluster's own
      kube-proxy."""
    if backend == "netns":
        return
    for i, p in enumerate(scenario.phases):
        if p.rollout is not None:
            raise BadInput(
                f"applies to --backend netns only: on {backend} roll CoreDNS yourself "
                "(kubectl -n kube-system rollout restart deployment coredns)",
                field=f"phases[{i}].rollout",
            )
        if p.events:
            kinds = sorted({e.kind for e in p.events})
            raise BadInput(
                f"applies to --backend netns only ({', '.join(kinds)}): on {backend} do it "
                "yourself (kubectl scale; delete kube-proxy's pod; kubectl delete and create "
                "the Service)",
                field=f"phases[{i}].events",
                value=kinds,
                allowed=["--backend netns"],
            )
        if scenario.phase_load(p).udp is not None:
            where = f"phases[{i}].load.udp" if p.load is not None else "load.udp"
            raise BadInput(
                f"applies to --backend netns only: the same-port UDP client does not run on "
                f"{backend} yet",
                field=where,
            )
        if scenario.phase_load(p).statsd is not None:
            where = f"phases[{i}].load.statsd" if p.load is not None else "load.statsd"
            raise BadInput(
                f"applies to --backend netns only: the statsd sender does not run on {backend} yet",
                field=where,
            )
    c = scenario.cluster
    if c.coredns.corefile is not None:
        raise BadInput(
            f"applies to --backend netns only: on {backend} CoreDNS keeps the cluster's own "
            "Corefile (edit the coredns ConfigMap there)",
            field="cluster.coredns.corefile",
            value=c.coredns.corefile,
        )
    kp = c.kube_proxy
    if backend == "kind":
        default = default_version()
        if kp.version != default:
            raise BadInput(
                f"the kind node image is built for the default pinned release {default}; "
                "other releases run on --backend netns",
                field="cluster.kube_proxy.version",
                value=kp.version,
                allowed=[default],
            )
    elif "kube_proxy" in c.model_fields_set:
        raise BadInput(
            f"applies to --backend netns and kind: on {backend} the cluster's own kube-proxy "
            "runs as it is configured",
            field="cluster.kube_proxy",
            value={"mode": kp.mode, "version": kp.version},
        )
