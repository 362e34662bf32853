"""Read-only look at an existing cluster's DNS path: nothing is created, patched or deleted."""

from __future__ import annotations

import re
from typing import TypedDict

from harness.backends.kube.api import KubeAPI
from harness.backends.kube.names import (
    COREDNS_CONFIGMAP,
    COREDNS_DEPLOYMENT,
    KUBE_DNS_SERVICE,
    NODELOCAL_NAME,
    SYSTEM_NAMESPACE,
)
from harness.backends.kube.placement import node_ready


class ClusterDiagnosis(TypedDict):
    nodes: int
    nodes_ready: int
    kernels: dict[str, str]
    kube_proxy_mode: str | None
    kube_dns_ip: str | None
    coredns_replicas: int | None
    coredns_cache: bool | None
    nodelocal_dns: bool
    findings: list[str]


def proxy_mode(config_text: str) -> str | None:
    m = re.search(r"^mode:\s*\"?([a-z]*)\"?\s*$", config_text, re.M)
    if m is None:
        return None
    return m.group(1) or "iptables"  # kube-proxy's default on Linux when mode is ""


def diagnose(api: KubeAPI) -> ClusterDiagnosis:
    nodes = api.list("v1", "Node")
    kernels = {
        n["metadata"]["name"]: (n.get("status", {}).get("nodeInfo") or {}).get("kernelVersion", "?")
        for n in nodes
    }
    svc = api.get("v1", "Service", KUBE_DNS_SERVICE, SYSTEM_NAMESPACE)
    dep = api.get("apps/v1", "Deployment", COREDNS_DEPLOYMENT, SYSTEM_NAMESPACE)
    cm = api.get("v1", "ConfigMap", COREDNS_CONFIGMAP, SYSTEM_NAMESPACE)
    kp = api.get("v1", "ConfigMap", "kube-proxy", SYSTEM_NAMESPACE)
    nl = api.get("apps/v1", "DaemonSet", NODELOCAL_NAME, SYSTEM_NAMESPACE)
    corefile = ((cm or {}).get("data") or {}).get("Corefile")
    cache = None if corefile is None else bool(re.search(r"^\s*cache(\s|$|\{)", corefile, re.M))
    mode = None
    if kp is not None:
        mode = proxy_mode(((kp.get("data") or {}).get("config.conf")) or "")
    out: ClusterDiagnosis = {
        "nodes": len(nodes),
        "nodes_ready": sum(1 for n in nodes if node_ready(n)),
        "kernels": kernels,
        "kube_proxy_mode": mode,
        "kube_dns_ip": (svc or {}).get("spec", {}).get("clusterIP"),
        "coredns_replicas": (dep or {}).get("spec", {}).get("replicas"),
        "coredns_cache": cache,
        "nodelocal_dns": nl is not None,
        "findings": [],
    }
    f = out["findings"]
    if mode in ("iptables", "ipvs") and not out["nodelocal_dns"]:
        f.append(
            "kube-proxy conntracks every DNS query to the kube-dns ClusterIP and no NodeLocal "
            "DNSCache bypasses it: exposed to both the insert race and table exhaustion"
        )
    if out["coredns_replicas"] == 1:
        f.append(
            "CoreDNS has one replica: with MASQUERADE to a single backend the SNAT port "
            "clash (insert_failed) is likeliest"
        )
    if cache is False:
        f.append("CoreDNS has no cache plugin")
    return out
