"""The kind config uses only fields of kind's v1alpha4 Cluster API, with allowed values.

The field set below is written from kind's documented v1alpha4 types (Cluster, Node,
Networking, Mount, PortMapping, PatchJSON6902), independently of the renderer.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from kube_fakes import scenario

from cthcommon.errors import BadInput
from harness.backends.kube import kindconfig
from harness.backends.kube.names import LABEL_NODE
from harness.plan.phase import plan_run

CLUSTER_FIELDS = {
    "kind",
    "apiVersion",
    "name",
    "nodes",
    "networking",
    "featureGates",
    "runtimeConfig",
    "kubeadmConfigPatches",
    "kubeadmConfigPatchesJSON6902",
    "containerdConfigPatches",
    "containerdConfigPatchesJSON6902",
}
NODE_FIELDS = {
    "role",
    "image",
    "labels",
    "extraMounts",
    "extraPortMappings",
    "gpus",
    "kubeadmConfigPatches",
    "kubeadmConfigPatchesJSON6902",
}
NETWORKING_FIELDS = {
    "ipFamily",
    "apiServerPort",
    "apiServerAddress",
    "podSubnet",
    "serviceSubnet",
    "disableDefaultCNI",
    "kubeProxyMode",
    "dnsSearch",
}
ROLES = {"control-plane", "worker"}
PROXY_MODES = {"iptables", "ipvs", "nftables", "none"}
IP_FAMILIES = {"ipv4", "ipv6", "dual"}


def kind_v1alpha4_errors(cfg: dict[str, Any]) -> list[str]:
    errs: list[str] = []
    if cfg.get("kind") != "Cluster" or cfg.get("apiVersion") != "kind.x-k8s.io/v1alpha4":
        errs.append("kind/apiVersion")
    errs += [f"unknown Cluster field {k}" for k in set(cfg) - CLUSTER_FIELDS]
    for i, n in enumerate(cfg.get("nodes", [])):
        errs += [f"nodes[{i}]: unknown field {k}" for k in set(n) - NODE_FIELDS]
        if n.get("role", "control-plane") not in ROLES:
            errs.append(f"nodes[{i}].role")
        if not all(isinstance(v, str) for v in (n.get("labels") or {}).values()):
            errs.append(f"nodes[{i}].labels must be strings")
    net = cfg.get("networking", {})
    errs += [f"unknown networking field {k}" for k in set(net) - NETWORKING_FIELDS]
    if net.get("kubeProxyMode", "iptables") not in PROXY_MODES:
        errs.append("networking.kubeProxyMode")
    if net.get("ipFamily", "ipv4") not in IP_FAMILIES:
        errs.append("networking.ipFamily")
    for p in cfg.get("kubeadmConfigPatches", []):
        if not isinstance(p, str) or "kind" not in (yaml.safe_load(p) or {}):
            errs.append("kubeadmConfigPatches entries are YAML strings with a kind")
    return errs


def test_checker_catches_unknown_fields() -> None:
    cfg = kindconfig.render(plan_run(scenario()), "c")
    cfg["networking"]["kubeproxymode"] = "iptables"
    cfg["nodes"][0]["extraMount"] = []
    assert len(kind_v1alpha4_errors(cfg)) == 2


@pytest.mark.parametrize("nodes", [1, 2, 4])
@pytest.mark.parametrize("mode", ["iptables", "ipvs", "nftables"])
def test_render_is_valid_v1alpha4(nodes: int, mode: str) -> None:
    s = scenario(cluster={"nodes": nodes})
    opts = kindconfig.KindOptions(
        node_image="kindest/node:v1.36.4",
        kube_proxy_mode=mode,
        pod_subnet="10.244.0.0/16",
        service_subnet="10.96.0.0/16",
    )
    text = kindconfig.render_yaml(plan_run(s), "cth-r1", opts)
    cfg = yaml.safe_load(text)  # what kind reads is the YAML text
    assert kind_v1alpha4_errors(cfg) == []
    roles = [n["role"] for n in cfg["nodes"]]
    assert roles == ["control-plane"] + ["worker"] * nodes
    assert [n["labels"][LABEL_NODE] for n in cfg["nodes"][1:]] == [
        f"node-{i + 1}" for i in range(nodes)
    ]
    assert {n["image"] for n in cfg["nodes"]} == {"kindest/node:v1.36.4"}
    assert cfg["networking"]["kubeProxyMode"] == mode


def test_defaults_iptables_and_kube_proxy_patch() -> None:
    cfg = kindconfig.render(plan_run(scenario(cluster={"masquerade_all": False})), "c")
    assert cfg["networking"] == {"ipFamily": "ipv4", "kubeProxyMode": "iptables"}
    patches = [yaml.safe_load(p) for p in cfg["kubeadmConfigPatches"]]
    proxy = next(p for p in patches if p["kind"] == "KubeProxyConfiguration")
    assert proxy["iptables"]["masqueradeAll"] is False
    assert proxy["conntrack"]["maxPerCore"] == 0
    assert not any(p["kind"] == "ClusterConfiguration" for p in patches)


def test_cluster_domain_patches_kubeadm_and_kubelet() -> None:
    cfg = kindconfig.render(plan_run(scenario(cluster={"cluster_domain": "k8s.test"})), "c")
    patches = {p["kind"]: p for p in map(yaml.safe_load, cfg["kubeadmConfigPatches"])}
    assert patches["ClusterConfiguration"]["networking"]["dnsDomain"] == "k8s.test"
    assert patches["KubeletConfiguration"]["clusterDomain"] == "k8s.test"
    assert patches["KubeletConfiguration"]["failCgroupV1"] is False


def test_kubelet_is_allowed_cgroup_v1() -> None:
    """kubelet 1.35+ exits on cgroup v1 unless failCgroupV1 is false (this host is v1)."""
    cfg = kindconfig.render(plan_run(scenario()), "c")
    kubelet = [
        p
        for p in map(yaml.safe_load, cfg["kubeadmConfigPatches"])
        if p["kind"] == "KubeletConfiguration"
    ]
    assert kubelet == [{"kind": "KubeletConfiguration", "failCgroupV1": False}]


@pytest.mark.parametrize(
    ("opts", "field"),
    [
        (kindconfig.KindOptions(kube_proxy_mode="userspace"), "kube_proxy_mode"),
        (kindconfig.KindOptions(ip_family="ipv5"), "ip_family"),
        (kindconfig.KindOptions(pod_subnet="10.0.0.0/33"), "pod_subnet"),
    ],
)
def test_bad_options_name_the_field(opts: kindconfig.KindOptions, field: str) -> None:
    with pytest.raises(BadInput) as e:
        kindconfig.render(plan_run(scenario()), "c", opts)
    assert e.value.field == field
