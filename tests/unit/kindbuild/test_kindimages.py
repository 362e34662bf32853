"""The kind node's images and layout: names as kubeadm lists them, kind's config adapted."""

from __future__ import annotations

import json
from pathlib import Path

from harness.kindbuild import kindbase, kindimages

V = kindimages.Versions(kubernetes="v1.35.4", etcd="v3.6.6", coredns="v1.13.1", pause="3.10.1")

# `kubeadm config images list --kubernetes-version v1.35.4` (kubeadm v1.35.4's output)
KUBEADM_LIST = """registry.k8s.io/kube-apiserver:v1.35.4
registry.k8s.io/kube-controller-manager:v1.35.4
registry.k8s.io/kube-scheduler:v1.35.4
registry.k8s.io/kube-proxy:v1.35.4
registry.k8s.io/coredns/coredns:v1.13.1
registry.k8s.io/pause:3.10.1
registry.k8s.io/etcd:3.6.6-0
"""


def test_every_image_kubeadm_lists_is_built() -> None:
    assert kindimages.missing_from_kubeadm(KUBEADM_LIST.split("\n"), V) == []
    newer = KUBEADM_LIST.replace("3.6.6-0", "3.6.7-0")
    assert kindimages.missing_from_kubeadm(newer.split("\n"), V) == ["registry.k8s.io/etcd:3.6.7-0"]


def test_specs_layout(tmp_path: Path) -> None:
    names = "kube-apiserver kube-controller-manager kube-scheduler kube-proxy etcd coredns pause kubectl"
    bins = {n: tmp_path / n for n in names.split()}
    rootfs = tmp_path / "rootfs.tar"
    specs = {s.tags[0]: s for s in kindimages.specs(V, bins, rootfs, tmp_path / "cni.sh")}
    assert set(specs) == set(kindimages.image_names(V).values())
    api = specs["registry.k8s.io/kube-apiserver:v1.35.4"]
    assert api.files == {"/usr/local/bin/kube-apiserver": bins["kube-apiserver"]}
    assert specs["registry.k8s.io/coredns/coredns:v1.13.1"].entrypoint == ("/coredns",)
    assert specs["registry.k8s.io/pause:3.10.1"].user == "65535:65535"
    # kube-proxy and the CNI stand-in need a userland (iptables, ip, sh): the node rootfs
    assert specs["registry.k8s.io/kube-proxy:v1.35.4"].base_layers == (rootfs,)
    cni = specs[f"{kindimages.STATIC_CNI_IMAGE}:v1.35.4"]
    assert cni.base_layers == (rootfs,)
    assert cni.cmd == (kindimages.STATIC_CNI_SCRIPT,)


def test_cni_manifest_names_the_image_and_no_template_fields() -> None:
    text = kindimages.static_cni_manifest(V)
    assert f"image: {kindimages.STATIC_CNI_IMAGE}:v1.35.4" in text
    assert "imagePullPolicy: Never" in text
    assert "{{" not in text  # kind renders it as a Go template


KIND_CONFIG = """version = 2

[proxy_plugins]
[proxy_plugins."fuse-overlayfs"]
  type = "snapshot"
  address = "/run/containerd-fuse-overlayfs.sock"

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  restrict_oom_score_adj = false
"""


def test_containerd_config_for_16() -> None:
    out = kindbase.containerd_config(KIND_CONFIG, "registry.k8s.io/pause:3.10.1")
    assert "proxy_plugins" not in out
    assert "fuse-overlayfs" not in out
    assert '  sandbox_image = "registry.k8s.io/pause:3.10.1"' in out
    assert 'snapshotter = "overlayfs"' in out
    assert "  restrict_oom_score_adj = true" in out
    assert "restrict_oom_score_adj = false" not in out


def test_cri_base_spec_adds_kinds_hook_and_drops_rlimits() -> None:
    spec = {"process": {"rlimits": [{"type": "RLIMIT_NOFILE"}], "cwd": "/"}, "hooks": {}}
    out = json.loads(kindbase.cri_base_spec(json.dumps(spec)))
    assert "rlimits" not in out["process"]
    assert out["hooks"]["createContainer"] == [{"path": "/kind/bin/mount-product-files.sh"}]


def test_rootfs_key_follows_the_package_list() -> None:
    assert kindbase.rootfs_key(("a", "b")) == kindbase.rootfs_key(("b", "a"))
    assert kindbase.rootfs_key(("a", "b")) != kindbase.rootfs_key(("a", "c"))


def test_node_image_tag_follows_its_inputs(tmp_path: Path) -> None:
    from harness.kindbuild import kindnode

    bins = {n: tmp_path / n for n in ("kubelet", "kubeadm", "etcd")}
    for p in bins.values():
        p.write_bytes(b"v1")
    key = kindnode.node_key("base:a", V, bins)
    assert kindnode.node_key("base:a", V, bins) == key  # same inputs: same tag, no rebuild
    assert kindnode.node_key("base:b", V, bins) != key  # another base image
    bins["etcd"].write_bytes(b"v2")
    assert kindnode.node_key("base:a", V, bins) != key  # a rebuilt binary
    other = kindimages.Versions("v1.35.4", "v3.6.6", "v1.13.1", "3.10")
    bins["etcd"].write_bytes(b"v1")
    assert kindnode.node_key("base:a", other, bins) != key  # another pinned version
