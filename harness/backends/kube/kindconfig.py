"""The kind ``Cluster`` config (``kind.x-k8s.io/v1alpha4``) for a run's plan.

One control-plane node plus one worker per scenario node: the load never runs on the node that
hosts the API server, so a full conntrack table on a worker cannot cut the harness off from
the cluster. Each worker carries ``conntrack-harness/node=node-i``.

kube-proxy runs in iptables mode by default (the mode the seed articles and the netns backend
model), with ``masqueradeAll`` from the scenario and ``conntrack.maxPerCore: 0`` so kube-proxy
leaves the host-global table size alone (the host guard owns it).
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from cthcommon.errors import BadInput
from harness import __version__
from harness.backends.kube.names import LABEL_NODE
from harness.plan.types import RunPlan

API_VERSION = "kind.x-k8s.io/v1alpha4"
ProxyMode = Literal["iptables", "ipvs", "nftables"]
IPFamily = Literal["ipv4", "ipv6", "dual"]
PROXY_MODES = ("iptables", "ipvs", "nftables")
IP_FAMILIES = ("ipv4", "ipv6", "dual")


@dataclass(frozen=True)
class KindOptions:
    node_image: str | None = None
    kube_proxy_mode: str | None = None  # None: the plan's kube_proxy.mode
    ip_family: str = "ipv4"
    pod_subnet: str | None = None
    service_subnet: str | None = None


def proxy_mode(plan: RunPlan, opts: KindOptions) -> str:
    return opts.kube_proxy_mode or plan.kube_proxy.mode


def _check(opts: KindOptions, mode: str) -> None:
    if mode not in PROXY_MODES:
        raise BadInput(
            "unknown kube-proxy mode",
            field="kube_proxy_mode",
            value=mode,
            allowed=list(PROXY_MODES),
        )
    if opts.ip_family not in IP_FAMILIES:
        raise BadInput(
            "unknown IP family", field="ip_family", value=opts.ip_family, allowed=list(IP_FAMILIES)
        )
    for field, value in (("pod_subnet", opts.pod_subnet), ("service_subnet", opts.service_subnet)):
        if value is None:
            continue
        for part in value.split(","):
            try:
                ipaddress.ip_network(part.strip())
            except ValueError:
                raise BadInput("not a CIDR", field=field, value=value) from None


def kubeadm_patches(plan: RunPlan, proxy_mode: str) -> list[str]:
    """Inline kubeadm config patches: cluster domain (kubeadm + kubelet) and kube-proxy."""
    domain = plan.cluster.cluster_domain
    patches: list[dict[str, Any]] = []
    # kubelet 1.35+ refuses to start on cgroup v1 unless told otherwise (this host is v1)
    kubelet: dict[str, Any] = {"kind": "KubeletConfiguration", "failCgroupV1": False}
    if domain != "cluster.local":
        patches.append({"kind": "ClusterConfiguration", "networking": {"dnsDomain": domain}})
        kubelet["clusterDomain"] = domain
    patches.append(kubelet)
    proxy: dict[str, Any] = {"kind": "KubeProxyConfiguration", "conntrack": {"maxPerCore": 0}}
    if proxy_mode in ("iptables", "nftables"):  # as the netns backend's kube-proxy has it
        proxy[proxy_mode] = {"masqueradeAll": plan.cluster.masquerade_all}
    patches.append(proxy)
    return [yaml.safe_dump(p, sort_keys=False) for p in patches]


def render(plan: RunPlan, name: str, opts: KindOptions = KindOptions()) -> dict[str, Any]:
    mode = proxy_mode(plan, opts)
    _check(opts, mode)
    nodes: list[dict[str, Any]] = [{"role": "control-plane"}]
    for node in plan.cluster.node_names():
        nodes.append({"role": "worker", "labels": {LABEL_NODE: node}})
    if opts.node_image:
        for n in nodes:
            n["image"] = opts.node_image
    networking: dict[str, Any] = {"ipFamily": opts.ip_family, "kubeProxyMode": mode}
    if opts.pod_subnet:
        networking["podSubnet"] = opts.pod_subnet
    if opts.service_subnet:
        networking["serviceSubnet"] = opts.service_subnet
    return {
        "kind": "Cluster",
        "apiVersion": API_VERSION,
        "name": name,
        "nodes": nodes,
        "networking": networking,
        "kubeadmConfigPatches": kubeadm_patches(plan, mode),
    }


def render_yaml(plan: RunPlan, name: str, opts: KindOptions = KindOptions()) -> str:
    return yaml.safe_dump(render(plan, name, opts), sort_keys=False)


def fingerprint(plan: RunPlan, opts: KindOptions = KindOptions()) -> str:
    """What a kept cluster was made from (pure): its kind config without the name, and this
    project's version. A kept cluster whose fingerprint differs is rebuilt, not reused."""
    doc = render(plan, "cluster", opts)
    doc.pop("name")
    text = json.dumps({"config": doc, "conntrack-harness": __version__}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
