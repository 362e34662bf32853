"""Every manifest the kube backends generate validates against the Kubernetes OpenAPI schemas
(kubernetes-validate's bundled, offline copies; strict: unknown fields are errors)."""

from __future__ import annotations

import copy
from typing import Any

import kubernetes_validate
import pytest
from kube_fakes import scenario

from harness.backends.kube import nodelocaldns, tuner, workload
from harness.backends.kube.dnsconfig import NamespaceMap, pod_dns
from harness.backends.kube.names import run_namespace
from harness.backends.kube.placement import NodeMap
from harness.plan.phase import plan_phase, plan_run
from harness.scenario.model import Scenario

# The kindest/node versions the kind workflow runs, and the newest schemas bundled.
K8S_VERSIONS = ["1.35.0", "1.36.0", "1.37.0"]
RUN = "r1"


def node_map(s: Scenario) -> NodeMap:
    m = {f"node-{i + 1}": f"w{i + 1}" for i in range(s.cluster.nodes)}
    return NodeMap(m, m)


def all_manifests(s: Scenario) -> list[dict[str, Any]]:
    NODES = node_map(s)
    nsmap = NamespaceMap(s.cluster.namespace, run_namespace(RUN), s.cluster.cluster_domain)
    out: list[dict[str, Any]] = [
        workload.namespace(RUN),
        *workload.http_server(plan_run(s).cluster, RUN, NODES),
    ]
    for phase in s.phases:
        plan = plan_phase(s, phase)
        dns = pod_dns(plan.pod_dns, nsmap, "10.96.0.10")
        out += workload.client_pods(
            plan_run(s).cluster, RUN, phase.name, nodes=NODES, dns=dns, image="img:glibc"
        )
        sysctls, ruleset = tuner.phase_changes(plan, RUN, include_global=True)
        if sysctls:
            out.append(
                tuner.daemonset(
                    RUN,
                    run_namespace(RUN),
                    f"node-tuner-{phase.name}",
                    sysctls=sysctls,
                    nodes=NODES,
                    image="img:glibc",
                    ruleset=ruleset,
                    table=tuner.fault_table(RUN),
                )
            )
    out += nodelocaldns.manifests(RUN, s.cluster.cluster_domain, "10.96.0.10")
    out.append(tuner.probe_daemonset(RUN, run_namespace(RUN), NODES, "img:glibc"))
    return out


SCENARIOS = {
    "default": scenario(),
    "musl-searches": scenario(
        cluster={
            "nodes": 3,
            "client_pods": 2,
            "cluster_domain": "k8s.test",
            "dns_config": {
                "searches": ["default.svc.k8s.test", "corp.example"],
                "options": [{"name": "ndots", "value": "2"}, {"name": "timeout", "value": "1"}],
            },
        },
        load={"dns": {"resolver": "musl", "names": ["http-server.default"]}},
    ),
}


def _names(objs: list[dict[str, Any]]) -> list[str]:
    return [f"{o['kind']}/{o['metadata']['name']}" for o in objs]


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("which", sorted(SCENARIOS))
def test_manifests_validate(version: str, which: str) -> None:
    objs = all_manifests(SCENARIOS[which])
    kinds = {o["kind"] for o in objs}
    assert {
        "Namespace",
        "Deployment",
        "Service",
        "Pod",
        "DaemonSet",
        "ConfigMap",
        "ServiceAccount",
    } <= kinds
    for obj, name in zip(objs, _names(objs), strict=True):
        validated = kubernetes_validate.validate(obj, version, strict=True)
        assert validated == version.rsplit(".", 1)[0], name


@pytest.mark.parametrize(
    ("path", "bad"),
    [
        (("spec", "dnsConfig", "options", 0, "value"), 5),  # must be a string
        (
            (
                "spec",
                "dnsPolicy_typo",
            ),
            "None",
        ),  # unknown field under strict
        (("spec", "containers", 0, "image"), ["x"]),
    ],
)
def test_validator_rejects_broken_pod(path: tuple[Any, ...], bad: Any) -> None:
    """The check above can fail: a broken copy of a rendered pod is rejected."""
    objs = all_manifests(SCENARIOS["default"])
    pod = copy.deepcopy(next(o for o in objs if o["kind"] == "Pod"))
    target = pod
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = bad
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pod, K8S_VERSIONS[0], strict=True)


def test_schemas_are_bundled_offline() -> None:
    """kubernetes-validate carries its schemas in the wheel: no network is needed."""
    versions = kubernetes_validate.utils.all_versions()
    for v in K8S_VERSIONS:
        assert v.rsplit(".", 1)[0] in {x.rsplit(".", 1)[0] for x in versions}
