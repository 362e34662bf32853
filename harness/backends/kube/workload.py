"""The per-run workload as Kubernetes objects: namespace, HTTP server, client pods.

Pure rendering from the run's plan; the objects are plain dicts ready for the API (and for
schema validation in the tests).
"""

from __future__ import annotations

from typing import Any

from harness.backends.kube.dnsconfig import PodDNSConfig
from harness.backends.kube.names import (
    HTTP_SERVER_IMAGE,
    HTTP_SERVER_NAME,
    LABEL_PHASE,
    client_pod_name,
    run_labels,
    run_namespace,
)
from harness.backends.kube.placement import NodeMap
from harness.plan.types import ClusterPlan

Manifest = dict[str, Any]

HTTP_PORT = 80
# The pods only idle until the harness execs the load worker in them; TERM ends them at once.
IDLE_COMMAND = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"]


def _meta(name: str, run_id: str, role: str, namespace: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": run_labels(run_id, role)}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def namespace(run_id: str) -> Manifest:
    """The run's namespace. Pod Security is 'privileged': the node tuner uses hostNetwork."""
    meta = _meta(run_namespace(run_id), run_id, "namespace")
    meta["labels"]["pod-security.kubernetes.io/enforce"] = "privileged"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def http_server(
    cluster: ClusterPlan, run_id: str, nodes: NodeMap, image: str = HTTP_SERVER_IMAGE
) -> list[Manifest]:
    """The HTTP server Deployment and its ClusterIP Service (named as the scenario's DNS load)."""
    ns = run_namespace(run_id)
    node = cluster.http_node
    selector = {"app": HTTP_SERVER_NAME, **run_labels(run_id)}
    pod_labels = {**selector, **run_labels(run_id, "http-server")}
    deployment: Manifest = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(HTTP_SERVER_NAME, run_id, "http-server", ns),
        "spec": {
            "replicas": cluster.http_replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "nodeSelector": nodes.selector(node),
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 5,
                    "containers": [
                        {
                            "name": "http",
                            "image": image,
                            "ports": [
                                {"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}
                            ],
                            "readinessProbe": {
                                "tcpSocket": {"port": HTTP_PORT},
                                "periodSeconds": 2,
                            },
                        }
                    ],
                },
            },
        },
    }
    service: Manifest = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(HTTP_SERVER_NAME, run_id, "http-server", ns),
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": HTTP_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    return [deployment, service]


def client_pods(
    cluster: ClusterPlan,
    run_id: str,
    phase: str,
    *,
    nodes: NodeMap,
    dns: PodDNSConfig,
    image: str,
    generation: int = 0,
) -> list[Manifest]:
    """The phase's client pods: they carry the phase's dnsConfig (immutable, so per phase).
    ``generation`` numbers the sets of pods a run makes, so that two sets never share names."""
    ns = run_namespace(run_id)
    node = cluster.client_node
    pods: list[Manifest] = []
    for i in range(cluster.client_pods):
        meta = _meta(client_pod_name(i, generation), run_id, "client", ns)
        meta["labels"][LABEL_PHASE] = phase
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": meta,
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": nodes.selector(node),
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 2,
                    "enableServiceLinks": False,
                    **dns.manifest(),
                    "containers": [
                        {
                            "name": "loadgen",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": IDLE_COMMAND,
                        }
                    ],
                },
            }
        )
    return pods
