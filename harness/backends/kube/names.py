"""Names, labels and fixed addresses shared by every Kubernetes backend.

Everything the harness creates in a cluster carries :data:`LABEL_MANAGED` and :data:`LABEL_RUN`,
so a sweeper can find what a killed run left behind with one label selector.
"""

from __future__ import annotations

import re

from cthcommon.errors import BadInput

LABEL_MANAGED = "app.kubernetes.io/managed-by"
MANAGED_BY = "conntrack-harness"
LABEL_RUN = "conntrack-harness/run-id"
LABEL_ROLE = "conntrack-harness/role"
LABEL_PHASE = "conntrack-harness/phase"
# Kind node labels (set in the kind config) and the node selector of every scheduled pod.
LABEL_NODE = "conntrack-harness/node"

SYSTEM_NAMESPACE = "kube-system"
KUBE_DNS_SERVICE = "kube-dns"
COREDNS_DEPLOYMENT = "coredns"
COREDNS_CONFIGMAP = "coredns"

# NodeLocal DNSCache's link-local listen address (the value the upstream addon documents).
NODELOCAL_IP = "169.254.20.10"
NODELOCAL_NAME = "node-local-dns"
NODELOCAL_UPSTREAM_SERVICE = "kube-dns-upstream"
NODELOCAL_IMAGE = "registry.k8s.io/dns/k8s-dns-node-cache:1.26.8"

HTTP_SERVER_NAME = "http-server"
HTTP_SERVER_IMAGE = "nginx:1.27-alpine"
CLIENT_PREFIX = "client"
TUNER_PREFIX = "node-tuner"
PROBE_NAME = "node-probe"

LOADGEN_IMAGE_GLIBC = "conntrack-harness/loadgen:glibc"
LOADGEN_IMAGE_MUSL = "conntrack-harness/loadgen:musl"

_RUN_ID = re.compile(r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$")


def check_run_id(run_id: str) -> str:
    """A run id must be usable as a label value and inside a DNS-1123 name."""
    if not _RUN_ID.match(run_id):
        raise BadInput(
            "a run id must be 1-40 lowercase letters, digits or '-', starting and ending "
            "with a letter or digit",
            field="run_id",
            value=run_id,
        )
    return run_id


def run_namespace(run_id: str) -> str:
    """The namespace one run's workload lives in: ``cth-<run id>``."""
    return f"cth-{check_run_id(run_id)}"


def run_labels(run_id: str, role: str | None = None) -> dict[str, str]:
    labels = {LABEL_MANAGED: MANAGED_BY, LABEL_RUN: check_run_id(run_id)}
    if role is not None:
        labels[LABEL_ROLE] = role
    return labels


def run_selector(run_id: str) -> str:
    """The label selector that matches everything one run created."""
    return f"{LABEL_MANAGED}={MANAGED_BY},{LABEL_RUN}={check_run_id(run_id)}"


def client_pod_name(index: int, generation: int = 0) -> str:
    """``client-<index>`` for a run's first set of client pods, ``client-<generation>-<index>``
    for the sets after it (a phase with another pod spec)."""
    if generation <= 1:
        return f"{CLIENT_PREFIX}-{index}"
    return f"{CLIENT_PREFIX}-{generation}-{index}"
