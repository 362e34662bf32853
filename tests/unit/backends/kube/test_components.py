"""result.json's environment.components on the kube backends: read from the live cluster (the
fake API server here), never from what the run intended; a part that cannot be read says why
and never fails the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kube_fakes import FakeAPI, FakeRunner, cluster_objects, node, scenario

from cthcommon.errors import BackendError
from harness import runner
from harness.backends.kube import components as parts
from harness.backends.kube.kind import NODE_IMAGE_BUILT, KindBackend, KindSettings
from harness.backends.kube.names import LABEL_NODE
from harness.backends.kube.runcluster import KubeRunCluster
from harness.plan.phase import plan_run
from harness.upstream import release

NODE_IMAGE = "conntrack-harness/kind-node:v1.35.4-0123456789ab"
KUBE_PROXY_CONF = """apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: {mode}
clusterCIDR: 10.244.0.0/16
"""


def kind_node(name: str, labels: dict[str, str] | None = None, **kw: Any) -> dict[str, Any]:
    n = node(name, labels, **kw)
    n["status"]["nodeInfo"].update(
        kubeletVersion="v1.35.4",
        containerRuntimeVersion="containerd://2.1.4",
        kubeProxyVersion="",  # deprecated: recent kubelets leave it empty
    )
    return n


def pod(name: str, *containers: tuple[str, str], phase: str = "Running") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "kube-system"},
        "spec": {"containers": [{"name": c, "image": i} for c, i in containers]},
        "status": {"phase": phase},
    }


def system_pods() -> list[dict[str, Any]]:
    r = "registry.k8s.io"
    cp = "cth-r1-control-plane"
    return [
        pod(f"kube-apiserver-{cp}", ("kube-apiserver", f"{r}/kube-apiserver:v1.35.4")),
        pod(
            f"kube-controller-manager-{cp}",
            ("kube-controller-manager", f"{r}/kube-controller-manager:v1.35.4"),
        ),
        pod(f"kube-scheduler-{cp}", ("kube-scheduler", f"{r}/kube-scheduler:v1.35.4")),
        pod(f"etcd-{cp}", ("etcd", f"{r}/etcd:3.6.6-0")),
        *[pod(f"kube-proxy-{x}", ("kube-proxy", f"{r}/kube-proxy:v1.35.4")) for x in "abc"],
        *[pod(f"coredns-{x}", ("coredns", f"{r}/coredns/coredns:v1.13.1")) for x in "ab"],
        *[
            pod(f"kindnet-{x}", ("kindnet-cni", "docker.io/kindest/kindnetd:v20250512-df8de77b"))
            for x in "ab"
        ],
        pod("old-job", ("kube-proxy", f"{r}/kube-proxy:v1.30.0"), phase="Succeeded"),
    ]


def kube_proxy_configmap(mode: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system"},
        "data": {"config.conf": KUBE_PROXY_CONF.format(mode=mode)},
    }


def kind_nodes() -> list[dict[str, Any]]:
    return [
        kind_node("cth-r1-control-plane", taint=True),
        kind_node("cth-r1-worker", {LABEL_NODE: "node-1"}),
        kind_node("cth-r1-worker2", {LABEL_NODE: "node-2"}),
    ]


def live_api(mode: str = "iptables") -> FakeAPI:
    return FakeAPI([*cluster_objects(kind_nodes()), *system_pods(), kube_proxy_configmap(mode)])


def test_the_live_cluster_parts_are_read() -> None:
    got = parts.read(live_api("nftables"))
    assert got["kubelet"] == {
        "version": "v1.35.4",
        "source": "status.nodeInfo.kubeletVersion of 3 nodes "
        "(cth-r1-control-plane, cth-r1-worker, cth-r1-worker2)",
    }
    assert got["container-runtime"]["version"] == "containerd://2.1.4"
    for name in ("kube-apiserver", "kube-controller-manager", "kube-scheduler"):
        assert got[name]["version"] == "v1.35.4"
        assert got[name]["image"] == f"registry.k8s.io/{name}:v1.35.4"
        assert got[name]["source"].startswith("image of kube-system 1 pod (")
    assert got["etcd"]["version"] == "3.6.6-0"
    assert got["coredns"]["version"] == "v1.13.1"
    assert got["kindnet-cni"]["version"] == "v20250512-df8de77b"
    # three running kube-proxy pods; the finished one with another image is not counted
    assert got["kube-proxy"] == {
        "version": "v1.35.4",
        "image": "registry.k8s.io/kube-proxy:v1.35.4",
        "source": "image of kube-system 3 pods (kube-proxy-a, kube-proxy-b, kube-proxy-c)",
        "mode": "nftables",
        "mode_source": "ConfigMap kube-system/kube-proxy",
    }
    assert all(isinstance(v, str) for c in got.values() for v in c.values())  # the schema


def test_mixed_versions_are_all_named() -> None:
    nodes = [kind_node(f"n{i}") for i in range(6)]
    nodes[5]["status"]["nodeInfo"]["kubeletVersion"] = "v1.34.2"
    got = parts.from_nodes(nodes)["kubelet"]
    assert got["version"] == "v1.34.2, v1.35.4"
    assert got["source"] == (
        "status.nodeInfo.kubeletVersion of v1.34.2 on 1 node (n5); "
        "v1.35.4 on 5 nodes (n0, n1, n2, n3 and 1 more)"
    )


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("registry.k8s.io/etcd:3.6.6-0", "3.6.6-0"),
        ("localhost:5000/kube-proxy:v1.35.4", "v1.35.4"),
        ("localhost:5000/kube-proxy", "latest"),
        ("nginx", "latest"),
        ("reg.example/coredns@sha256:abc", "sha256:abc"),
        ("reg.example/coredns:v1.13.1@sha256:abc", "v1.13.1"),
    ],
)
def test_an_image_version_is_its_tag(image: str, version: str) -> None:
    assert parts.image_version(image) == version


def test_kube_proxy_mode_from_its_configmap() -> None:
    assert parts.kube_proxy_mode(None) is None
    assert parts.kube_proxy_mode(kube_proxy_configmap("ipvs")) == "ipvs"
    assert parts.kube_proxy_mode(kube_proxy_configmap('""')).startswith("iptables (mode unset")
    bad = kube_proxy_configmap("x")
    bad["data"] = {"config.conf": "mode: [unclosed"}
    assert (parts.kube_proxy_mode(bad) or "").startswith("unknown (config.conf is not YAML")
    assert (parts.kube_proxy_mode({"data": {}}) or "").startswith("unknown (the ConfigMap has no")


class Forbidden(FakeAPI):
    """An existing cluster where this user may list nothing in kube-system."""

    def list(self, api_version: str, kind: str, namespace: str | None = None, **kw: Any) -> Any:
        if namespace == "kube-system" or kind == "Node":
            raise BackendError(f"list {kind} failed: (403)\nReason: Forbidden", status=403)
        return super().list(api_version, kind, namespace, **kw)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Any:
        if kind == "ConfigMap":
            raise BackendError(f"get {kind}/{name} failed: (403) Forbidden", status=403)
        return super().get(api_version, kind, name, namespace)


def test_what_cannot_be_read_says_why_and_nothing_raises() -> None:
    class Realizer:
        name = "kind"

        def components(self) -> dict[str, dict[str, str]]:
            raise OSError("docker is gone")

    got = parts.read(Forbidden(cluster_objects(kind_nodes())), Realizer())
    assert got["nodes"] == {
        "version": "unknown",
        "source": "not read: list Node failed: (403) Reason: Forbidden",
    }
    assert got["kube-system pods"]["source"].startswith("not read: list Pod failed: (403)")
    assert got["kube-proxy"]["mode"].startswith("unknown (not read: get ConfigMap/kube-proxy")
    assert got["kind parts"] == {"version": "unknown", "source": "not read: docker is gone"}


def test_absent_parts_are_left_out() -> None:
    # no kube-system pods, no kube-proxy ConfigMap, no nodeInfo versions: nothing to say
    got = parts.read(FakeAPI(cluster_objects([node("a")])))
    assert got == {}
    # kube-proxy outside pods, reported by the node (older kubelets)
    n = kind_node("a")
    n["status"]["nodeInfo"]["kubeProxyVersion"] = "v1.30.1"
    assert parts.read(FakeAPI([n]))["kube-proxy"]["version"] == "v1.30.1"


# --- through KubeRunCluster (the runner's `components()`), with kind's own parts -----------
def kind_run_cluster(
    answers: dict[tuple[str, ...], Any], **settings: Any
) -> tuple[KubeRunCluster, FakeRunner]:
    api = live_api()
    run = FakeRunner(answers)
    backend = KindBackend(
        KindSettings(build_images=False, **settings),
        runner=run,
        api_factory=lambda _kc: api,
        euid=lambda: 0,
    )
    s = scenario(phases=[{"name": "baseline"}])
    return KubeRunCluster(backend, plan_run(s), "r1"), run


KIND_ANSWERS: dict[tuple[str, ...], Any] = {
    ("docker", "ps"): (
        f"cth-r1-control-plane {NODE_IMAGE}\ncth-r1-worker {NODE_IMAGE}\n"
        f"cth-r1-worker2 {NODE_IMAGE}\n"
    ),
    ("kind", "version"): "kind v0.33.0 go1.26.8 linux/amd64\n",
    ("docker", "info"): "26.1.5+dfsg1\n",
}


def test_kind_records_the_cluster_node_image_kind_and_docker() -> None:
    cluster, run = kind_run_cluster(KIND_ANSWERS, private_docker=False)
    with cluster:
        got = cluster.components()
    assert got["kubelet"]["version"] == "v1.35.4"
    assert got["kube-proxy"]["mode"] == "iptables"
    assert got["kind-node-image"] == {
        "version": "v1.35.4-0123456789ab",
        "image": NODE_IMAGE,
        "source": "kind's default node image (pulled by kind); image of the node containers",
    }
    assert got["kind"]["version"] == "v0.33.0"
    assert got["kind"]["source"].startswith("kind on PATH")
    assert got["docker"] == {
        "version": "26.1.5+dfsg1",
        "source": "the system Docker daemon; docker info .ServerVersion",
    }
    assert [
        "docker",
        "ps",
        "--all",
        "--filter",
        "label=io.x-k8s.kind.cluster=cth-r1",
        "--format",
        "{{.Names}} {{.Image}}",
    ] in run.calls
    json.dumps(got)  # result.json takes it as it is


def test_a_node_image_built_here_says_from_what() -> None:
    cluster, _ = kind_run_cluster(KIND_ANSWERS, private_docker=False)
    with cluster:
        backend = cluster._realizer
        assert isinstance(backend, KindBackend)
        backend._node_image_source = NODE_IMAGE_BUILT
        backend.settings.private_docker = True
        got = cluster.components()
    rel = release()
    src = got["kind-node-image"]["source"]
    assert src.startswith("built here from the pinned upstream binaries")
    for v in (rel.kubernetes, rel.etcd, rel.coredns):
        assert v in src
    assert got["kind"]["source"].startswith("built here: go install sigs.k8s.io/kind@")
    assert got["docker"]["source"].startswith("this project's private dockerd")


def test_kind_parts_that_cannot_be_read_say_why() -> None:
    answers = {("docker", "ps"): "", ("kind", "version"): "kind v0.33.0\n"}
    cluster, _ = kind_run_cluster(answers, private_docker=False)

    def broken(*_a: Any, **_k: Any) -> Any:
        raise BackendError("docker info failed: Cannot connect to the Docker daemon")

    with cluster:
        got = dict(cluster.components())
        cluster._realizer._run = broken  # type: ignore[attr-defined]
        later = cluster.components()
    assert got["kind-node-image"]["source"] == (
        "not read: no node containers of kind cluster cth-r1 found"
    )
    assert got["kind"]["version"] == "v0.33.0"
    assert later["docker"]["source"].startswith("not read: docker info failed")
    assert later["kubelet"]["version"] == "v1.35.4"  # the API parts are unaffected


def test_the_runner_records_what_the_cluster_reports(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """ClusterSession puts the cluster's components() into environment.components."""
    cluster, _ = kind_run_cluster(KIND_ANSWERS, private_docker=False)
    monkeypatch.setenv("CONNTRACK_HARNESS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(runner, "require_root", lambda *_a: None)
    monkeypatch.setattr(runner, "preflight", lambda *_a, **_kw: None)
    monkeypatch.setattr(runner, "check_backend_ready", lambda *_a: None)
    monkeypatch.setattr(runner, "changes_host", lambda *_a: False)
    monkeypatch.setattr(runner, "restore_stale", runner.RestoreReport)
    monkeypatch.setattr(runner, "make_cluster", lambda *_a, **_kw: cluster)
    monkeypatch.setattr(runner.sysctl, "read", lambda _k: "262144")
    monkeypatch.setattr(cluster, "apply_node_sysctls", lambda: None)
    s = scenario(phases=[{"name": "baseline"}])
    with runner.ClusterSession(s, backend="kind") as session:
        assert session.env is not None
        comps = session.env["components"]
    assert comps["kube-apiserver"]["version"] == "v1.35.4"
    assert comps["kind-node-image"]["image"] == NODE_IMAGE


def test_nodelocal_stand_in_is_named_as_such_on_kind() -> None:
    """A scenario with NodeLocal, on kind's air-gapped Docker: node-cache is not built, and
    the record says what ran instead."""
    from harness.backends.kube.cluster import Images

    imgs = Images("g", "m", nodelocal_stand_in="registry.k8s.io/coredns/coredns:v1.13.1")
    cluster, _ = kind_run_cluster(KIND_ANSWERS, private_docker=False, images=imgs)
    cluster.plan = plan_run(scenario(phases=[{"name": "nl", "remediations": ["nodelocal-dns"]}]))
    with cluster:
        got = cluster.components()
    assert got["node-cache"]["version"].endswith("(not built)")
    assert got["node-cache"]["source"].startswith("stand-in: registry.k8s.io/coredns/coredns")
    cluster, _ = kind_run_cluster(KIND_ANSWERS, private_docker=False, images=imgs)
    with cluster:
        assert "node-cache" not in cluster.components()  # no NodeLocal phase: not recorded
