"""Item 9: the kube backend's API code and objects against a REAL kube-apiserver.

The embedded control plane (etcd, kube-apiserver, kube-controller-manager with the namespace
and garbage collector controllers) runs in its own network namespace; the one API client of
every backend (:mod:`harness.kubeapi`), made from the control plane's admin kubeconfig as the
kind and kubeconfig backends make theirs, talks to it through sockets made inside that
namespace. Every object the
kind/kubeconfig backends create is server-side applied for real, the CoreDNS ConfigMap change
and its verbatim restore round-trip, and label-based cleanup leaves nothing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from types import SimpleNamespace
from typing import Any

import pytest

from harness.backends.kube import coredns, nodelocaldns, tuner, workload
from harness.backends.kube.cluster import _apply_all
from harness.backends.kube.dnsconfig import NamespaceMap, pod_dns
from harness.backends.kube.names import run_namespace, run_selector
from harness.backends.kube.placement import NodeMap
from harness.backends.netns.k8s import coredns as real_coredns
from harness.backends.netns.k8s import pki
from harness.backends.netns.k8s.controlplane import BINARIES, ControlPlane, ControlPlaneConfig
from harness.backends.netns.k8s.kubelet import CLEANUP_KINDS, Kubelet
from harness.dataplane.faults import race_window_ruleset
from harness.kernel.journal import HostLock, Journal
from harness.kubeapi.client import ApiClient, ref
from harness.kubeapi.kubeconfig import client_for
from harness.plan.phase import plan_phase, plan_run
from harness.plan.types import CoreDNSPlan
from harness.scenario.loader import parse_scenario
from harness.upstream import ComponentMissing, locate
from tests.kernel.conftest import HostSnapshot

pytestmark = [pytest.mark.kernel, pytest.mark.apiserver]

KINDS_TO_CHECK = (
    *CLEANUP_KINDS,
    ("apps/v1", "Deployment"),
    ("apps/v1", "DaemonSet"),
)


class Real:
    """The client, with the control plane and run it talks to."""

    def __init__(self, cp: ControlPlane, api: ApiClient, run_id: str) -> None:
        self.cp, self.api, self.run_id = cp, api, run_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self.api, name)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Real]:
    try:
        for b in BINARIES:
            locate(b)
    except ComponentMissing as e:
        pytest.skip(str(e))
    before = HostSnapshot.take()
    with pytest.MonkeyPatch.context() as mp:
        state = tmp_path_factory.mktemp("state")
        mp.setenv("CONNTRACK_HARNESS_STATE_DIR", str(state))
        with HostLock(wait_s=60):
            j = Journal.create(os.urandom(3).hex())
            cfg = ControlPlaneConfig(run_id=j.run_id, ns=f"cth-{j.run_id}-cp")
            with ControlPlane(cfg, j, state / j.run_id) as cp:
                print(f"control plane ready: {cp.timings.marks}")
                kc = str(cp.pki.kubeconfig(pki.ADMIN))
                with client_for(kc, netns=cfg.ns) as api:
                    yield Real(cp, api, j.run_id)
            j.close()
    leftovers = HostSnapshot.take().leftovers_since(before)
    assert not leftovers, leftovers


def scenario_with_everything() -> Any:
    return parse_scenario(
        {
            "name": "api",
            "cluster": {"nodes": 2, "client_pods": 2, "nodelocal_dns": True},
            "phases": [{"name": "baseline"}],
        }
    )


def backend_objects(run_id: str) -> list[dict[str, Any]]:
    """Every object the kind/kubeconfig backends create for a run, rendered by their code."""
    sc = scenario_with_everything()
    nodes = NodeMap({"node-1": "w1", "node-2": "w2"}, {"node-1": "w1", "node-2": "w2"})
    ns = run_namespace(run_id)
    nsmap = NamespaceMap(sc.cluster.namespace, ns, sc.cluster.cluster_domain)
    plan = plan_phase(sc, sc.phases[0])
    dns = pod_dns(plan.pod_dns, nsmap, "10.96.0.10")
    objs: list[dict[str, Any]] = [workload.namespace(run_id)]
    cluster = plan_run(sc).cluster
    objs += workload.http_server(cluster, run_id, nodes)
    objs += workload.client_pods(cluster, run_id, "baseline", nodes=nodes, dns=dns, image="img")
    objs.append(
        tuner.daemonset(
            run_id,
            ns,
            f"{tuner.TUNER_PREFIX}-run",
            sysctls={"net.netfilter.nf_conntrack_tcp_timeout_time_wait": "30"},
            nodes=nodes,
            image="img",
            ruleset=race_window_ruleset(50, tuner.fault_table(run_id)),
            table=tuner.fault_table(run_id),
        )
    )
    objs.append(tuner.probe_daemonset(run_id, ns, nodes, "img"))
    objs += nodelocaldns.manifests(run_id, sc.cluster.cluster_domain, "10.96.0.10")
    return objs


def test_every_backend_object_is_accepted_and_label_cleanup_leaves_nothing(real: Real) -> None:
    objs = backend_objects(real.run_id)
    kinds = {o["kind"] for o in objs}
    assert {"Namespace", "Deployment", "Service", "Pod", "DaemonSet", "ConfigMap"} <= kinds
    s = SimpleNamespace(api=real, timeout_s=60.0)
    with ExitStack() as stack:
        # the kube backend's own apply path (server-side apply), undone by its own deletes
        _apply_all(s, stack, objs, wait_gone=True)  # type: ignore[arg-type]
        for o in objs:
            api_version, kind, name, ns = ref(o)
            got = real.get(api_version, kind, name, ns)
            assert got is not None, f"{kind}/{name} not stored"
            assert got["metadata"]["labels"]["conntrack-harness/run-id"] == real.run_id
        sel = run_selector(real.run_id)
        listed = {
            (o["kind"], o["metadata"]["name"])
            for api_version, kind in KINDS_TO_CHECK
            for o in real.list(api_version, kind, None, sel)
        }
        assert len(listed) >= len(objs) - 1
    sel = run_selector(real.run_id)
    left = [
        f"{kind}/{o['metadata']['name']}"
        for api_version, kind in KINDS_TO_CHECK
        for o in real.list(api_version, kind, None, sel)
    ]
    assert left == []


def test_server_rejects_what_schema_would(real: Real) -> None:
    """The check has teeth: a broken object is refused by the apiserver itself."""
    from cthcommon.errors import BackendError

    bad = workload.namespace(real.run_id)
    bad["metadata"]["name"] = "Not_A_Valid_Name"
    with pytest.raises(BackendError, match=r"(?i)invalid"):
        real.apply(bad)


def kubeadm_objects(run_id: str) -> list[dict[str, Any]]:
    labels = {"k8s-app": "kube-dns"}
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "coredns", "namespace": "kube-system"},
            "data": {"Corefile": real_coredns.kubeadm_corefile("cluster.local")},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "coredns", "namespace": "kube-system", "labels": labels},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {"name": "coredns", "image": "registry.k8s.io/coredns/coredns:v1.13.1"}
                        ],
                        "nodeSelector": {"kubernetes.io/os": "linux"},
                    },
                },
            },
        },
    ]


def test_coredns_configmap_change_and_verbatim_restore_round_trip(real: Real) -> None:
    objs = kubeadm_objects(real.run_id)
    for o in objs:
        real.apply(o)
    try:
        cm = real.get("v1", "ConfigMap", "coredns", "kube-system")
        original = cm["data"]["Corefile"]
        dep = real.get("apps/v1", "Deployment", "coredns", "kube-system")
        settings = CoreDNSPlan(cache=False, max_concurrent=50, replicas=3)
        text = coredns.render_corefile(original, settings, {"api.example.com": "203.0.113.80"})
        real.patch("v1", "ConfigMap", "coredns", "kube-system", coredns.configmap_patch(text))
        real.patch(
            "apps/v1",
            "Deployment",
            "coredns",
            "kube-system",
            coredns.deployment_patch(3, {"kubernetes.io/hostname": "w2"}, "t1"),
        )
        changed = real.get("v1", "ConfigMap", "coredns", "kube-system")["data"]["Corefile"]
        assert changed == text
        assert changed != original
        d = real.get("apps/v1", "Deployment", "coredns", "kube-system")
        assert d["spec"]["replicas"] == 3
        # a merge patch adds the placement beside kubeadm's os selector
        assert d["spec"]["template"]["spec"]["nodeSelector"] == {
            "kubernetes.io/os": "linux",
            "kubernetes.io/hostname": "w2",
        }
        # restore, verbatim
        real.patch("v1", "ConfigMap", "coredns", "kube-system", coredns.configmap_patch(original))
        real.patch(
            "apps/v1",
            "Deployment",
            "coredns",
            "kube-system",
            coredns.deployment_restore_patch(dep, "t2"),
        )
        back = real.get("v1", "ConfigMap", "coredns", "kube-system")["data"]["Corefile"]
        assert back == original
        d = real.get("apps/v1", "Deployment", "coredns", "kube-system")
        assert d["spec"]["replicas"] == 2
        assert d["spec"]["template"]["spec"]["nodeSelector"] == {"kubernetes.io/os": "linux"}
    finally:
        for o in objs:
            real.delete(*ref(o))


def test_netns_kubelet_cleanup_by_label(real: Real) -> None:
    """The netns backend's own client: Nodes, Services, Pods with status, then label cleanup."""
    from harness.backends.netns.k8s.kubelet import kube_dns_service, pod

    with real.cp.client() as c:
        k = Kubelet(c, real.run_id)
        k.register_node("node-1", "172.18.0.11", "10.244.1.0/24")
        k.create(kube_dns_service("10.96.0.10", real.run_id))
        k.run_pod(
            pod("dns-a", "kube-system", "node-1", real.run_id, role="coredns",
                labels={"k8s-app": "kube-dns"}),
            "10.244.1.2",
            "172.18.0.11",
        )  # fmt: skip
        k.wait_endpoints("kube-dns", "kube-system", {"10.244.1.2"})
        k.set_ready("dns-a", "kube-system", "10.244.1.2", "172.18.0.11", ready=False)
        k.wait_endpoints("kube-dns", "kube-system", set())
        assert k.leftovers()
        k.cleanup()
        assert k.leftovers() == []
        assert c.get("v1", "Node", "node-1") is None
