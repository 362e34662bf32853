"""The backends' command lines and API calls, against a fake runner and a fake API server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_fakes import FakeAPI, FakeRunner, cluster_objects, node, scenario

from cthcommon.errors import NotRoot, UnsafeRequest
from harness.backends.kube import kindconfig
from harness.backends.kube.cluster import Images
from harness.backends.kube.kind import FINGERPRINT_FILE, KindBackend, KindSettings
from harness.backends.kube.kubeconfig import KubeconfigBackend, KubeconfigSettings, disruptive_steps
from harness.backends.kube.names import LABEL_NODE
from harness.kindbuild import loadgenimage
from harness.plan.phase import plan_phase, plan_run

STAT = (
    "entries clashres insert insert_failed drop early_drop\n"
    "0000012c 00000002 00000010 00000001 00000005 00000000\n300\n2048\n"
)


def kind_api() -> FakeAPI:
    nodes = [
        node("cth-r1-control-plane", taint=True),
        node("cth-r1-worker", {LABEL_NODE: "node-1"}),
        node("cth-r1-worker2", {LABEL_NODE: "node-2"}),
    ]
    return FakeAPI(cluster_objects(nodes))


class FakeHost:
    """Host sysctls as a dict: get reads the current value, set journals every write."""

    def __init__(self, **values: str) -> None:
        self.values = {f"net.netfilter.{k}": v for k, v in values.items()}
        self.sets: list[tuple[str, str]] = []

    def get(self, name: str) -> str:
        return self.values[name]

    def set(self, name: str, value: int | str) -> None:
        self.sets.append((name, str(value)))
        self.values[name] = str(value)


def make_kind(
    api: FakeAPI, runner: FakeRunner, *, euid: int = 0, host: FakeHost | None = None, **kw: Any
) -> KindBackend:
    kw.setdefault("private_docker", False)  # the fake runner plays the system docker
    return KindBackend(
        KindSettings(**kw),
        runner=runner,
        api_factory=lambda _kc: api,
        host_factory=lambda: (
            host or FakeHost(nf_conntrack_max="262144", nf_conntrack_buckets="65536")
        ),
        euid=lambda: euid,
    )


def test_kind_lifecycle_commands_and_cleanup(tmp_path: Any) -> None:
    api, runner = kind_api(), FakeRunner({("docker", "exec"): STAT})
    backend = make_kind(api, runner)
    s = scenario()
    configs: list[dict[str, Any]] = []
    real_run = runner.__call__

    def spy(argv: Any, **kw: Any) -> Any:
        if argv[:3] == ["kind", "create", "cluster"]:
            configs.append(yaml.safe_load(Path(argv[argv.index("--config") + 1]).read_text()))
        return real_run(argv, **kw)

    backend._run = spy  # type: ignore[method-assign]
    with backend.realize(plan_run(s), "r1") as cluster:
        assert cluster.nodes() == ["node-1", "node-2"]
        assert cluster.real_nodes() == ["cth-r1-worker", "cth-r1-worker2"]
        assert cluster.node_counters()["cth-r1-worker"]["drop"] == 5
        assert ("apply", "Namespace", None, "cth-r1") in api.calls
        assert ("patch", "ConfigMap", "kube-system", "coredns") in api.calls
    verbs = [c[:3] for c in runner.calls]
    assert verbs[0] == ["kind", "get", "clusters"]
    assert ["kind", "create", "cluster"] in verbs
    # the images the phases use (glibc only here), checked in the system daemon (the fake
    # has them), then the HTTP server's, each loaded from that daemon
    assert [c[3] for c in runner.calls if c[:3] == ["kind", "load", "docker-image"]] == [
        "conntrack-harness/loadgen:glibc",
        loadgenimage.http_server_tag(),
    ]
    assert not [c for c in runner.calls if c[:2] in (["docker", "build"], ["docker", "load"])]
    assert runner.calls[-1][:3] == ["kind", "delete", "cluster"]  # deleted last, not kept
    assert configs[0]["networking"]["kubeProxyMode"] == "iptables"
    # the namespace is gone and CoreDNS's Corefile is back as found
    assert api.get("v1", "Namespace", "cth-r1") is None
    assert (
        api.get("v1", "ConfigMap", "coredns", "kube-system")["data"]["Corefile"]
        == cluster_objects([])[1]["data"]["Corefile"]
    )


def test_kind_keep_and_reuse() -> None:
    api, runner = kind_api(), FakeRunner({("kind", "get", "clusters"): "other\ncth-keep\n"})
    with make_kind(api, runner, cluster_name="cth-keep", build_images=False).realize(
        plan_run(scenario()), "r1"
    ):
        pass
    verbs = [c[:3] for c in runner.calls]
    assert ["kind", "export", "kubeconfig"] in verbs
    assert ["kind", "create", "cluster"] not in verbs
    assert ["kind", "delete", "cluster"] not in verbs  # an existing cluster is never deleted
    assert not any(c[:2] == ["docker", "build"] for c in runner.calls)


def _kept(found: str) -> tuple[FakeRunner, str]:
    """A kept cluster cth-keep whose control-plane node says it was made for ``found``
    ("same": this scenario's fingerprint); realize it with keep_cluster."""
    made_for = kindconfig.fingerprint(plan_run(scenario()))
    mark = made_for if found == "same" else found
    runner = FakeRunner(
        {
            ("kind", "get", "clusters"): "cth-keep\n",
            ("docker", "exec", "cth-keep-control-plane", "cat"): mark,
        }
    )
    backend = make_kind(kind_api(), runner, cluster_name="cth-keep", build_images=False)
    backend.settings.keep_cluster = True
    with backend.realize(plan_run(scenario()), "r1"):
        pass
    return runner, made_for


def test_a_kept_cluster_made_for_this_config_is_reused() -> None:
    runner, _ = _kept("same")
    verbs = [c[:3] for c in runner.calls]
    assert ["kind", "export", "kubeconfig"] in verbs
    assert ["kind", "create", "cluster"] not in verbs
    assert ["kind", "delete", "cluster"] not in verbs


def test_a_kept_cluster_made_for_another_config_is_rebuilt_and_marked() -> None:
    runner, made_for = _kept("0123456789abcdef")  # another config or version made it
    verbs = [c[:3] for c in runner.calls]
    assert verbs.index(["kind", "delete", "cluster"]) < verbs.index(["kind", "create", "cluster"])
    assert ["kind", "delete", "cluster"] not in verbs[verbs.index(["kind", "create", "cluster"]) :]
    marks = [c for c in runner.calls if c[:3] == ["docker", "exec", "cth-keep-control-plane"]]
    assert marks[-1][-1] == f"printf %s {made_for} > {FINGERPRINT_FILE}"


def test_the_fingerprint_follows_the_cluster_config() -> None:
    base = kindconfig.fingerprint(plan_run(scenario()))
    assert kindconfig.fingerprint(plan_run(scenario())) == base
    assert kindconfig.fingerprint(plan_run(scenario(cluster={"nodes": 3}))) != base
    proxy = {"kube_proxy": {"mode": "nftables"}}
    assert kindconfig.fingerprint(plan_run(scenario(cluster=proxy))) != base
    # the load does not shape the cluster: another load reuses it
    assert kindconfig.fingerprint(plan_run(scenario(load={"duration_s": 3}))) == base


def test_kind_cleans_up_when_the_body_fails() -> None:
    api, runner = kind_api(), FakeRunner()
    with pytest.raises(RuntimeError), make_kind(api, runner).realize(plan_run(scenario()), "r1"):
        raise RuntimeError("boom")
    assert runner.calls[-1][:3] == ["kind", "delete", "cluster"]
    assert ("delete", "Namespace", None, "cth-r1") in api.calls


def test_kind_refuses_host_sysctl_when_not_root() -> None:
    api, runner = kind_api(), FakeRunner()
    with (
        pytest.raises(NotRoot) as e,
        make_kind(api, runner, euid=1000).realize(
            plan_run(scenario(host={"nf_conntrack_max": 2048})), "r1"
        ),
    ):
        pass
    assert runner.calls == []  # refused before any cluster was created
    assert "nf_conntrack_max" in str(e.value)


def test_kind_host_sysctl_through_guard_and_restored() -> None:
    api, runner = kind_api(), FakeRunner()
    host = FakeHost(nf_conntrack_max="262144", nf_conntrack_buckets="65536")
    s = scenario(host={"nf_conntrack_max": 2048})
    with make_kind(api, runner, host=host).realize(plan_run(s), "r1") as cluster:
        assert host.values["net.netfilter.nf_conntrack_max"] == "2048"
        with cluster.phase(plan_run(s).phase("sysctls")):
            assert host.values["net.netfilter.nf_conntrack_max"] == "4096"
            assert host.values["net.netfilter.nf_conntrack_buckets"] == "1024"
        assert host.values["net.netfilter.nf_conntrack_max"] == "2048"  # phase reverted
    assert host.values == {
        "net.netfilter.nf_conntrack_max": "262144",
        "net.netfilter.nf_conntrack_buckets": "65536",
    }
    # on kind the node tuner never tries the (read-only in a container) global sizes
    assert not any(k[0] == "DaemonSet" and "max" in str(v) for k, v in api.objects.items())


def test_guarded_host_sysctls_refuses_non_root() -> None:
    from harness.backends.kube.hostsysctl import GuardedHostSysctls

    class Guard:
        def __init__(self) -> None:
            self.sets: list[tuple[str, int | str, str | None]] = []

        def set(self, name: str, value: int | str, netns: str | None = None) -> object:
            self.sets.append((name, value, netns))
            return None

    g = Guard()
    GuardedHostSysctls(g, read=lambda _n: "1", euid=lambda: 0).set(
        "net.netfilter.nf_conntrack_max", 2048
    )
    assert g.sets == [("net.netfilter.nf_conntrack_max", 2048, None)]
    with pytest.raises(NotRoot):
        GuardedHostSysctls(g, read=lambda _n: "1", euid=lambda: 1000).set("x", 1)
    assert len(g.sets) == 1


def test_phase_applies_and_reverts(scn: Any) -> None:
    resolv = "search cth-r1.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n"
    runner = FakeRunner(
        {("...", "cat", "/etc/resolv.conf"): resolv, ("kubectl",): json.dumps({"lookups": 10})}
    )
    api = kind_api()
    order: list[tuple[str, str]] = []  # DaemonSets applied, and asked after (their readiness)
    get, apply = api.get, api.apply
    api.get = lambda v, kind, name, ns=None: (order.append(("get", name)), get(v, kind, name, ns))[
        1
    ]  # type: ignore[method-assign]
    api.apply = lambda obj: (order.append(("apply", obj["metadata"]["name"])), apply(obj))[1]  # type: ignore[method-assign]
    with make_kind(api, runner).realize(plan_run(scn), "r1") as cluster:
        for phase in scn.phases:
            before = {k for k in api.objects if k[0] in ("Pod", "DaemonSet")}
            with cluster.phase(plan_phase(scn, phase)):
                pods = api.list("v1", "Pod", "cth-r1")
                assert len(pods) == scn.cluster.client_pods
                cfg = pods[0]["spec"]["dnsConfig"]
                if phase.name == "nodelocal":
                    assert cfg["nameservers"] == ["169.254.20.10"]
                    assert api.get("apps/v1", "DaemonSet", "node-local-dns", "kube-system")
                if phase.name == "race":
                    ds = api.get("apps/v1", "DaemonSet", "node-tuner-race", "cth-r1")
                    env = {
                        e["name"]: e["value"]
                        for e in ds["spec"]["template"]["spec"]["containers"][0]["env"]
                    }
                    assert "nf_conntrack_acct=1" in env["SYSCTLS"]
                    assert "NFT_RULESET" not in env  # the sysctls go to every node...
                    fault = api.get("apps/v1", "DaemonSet", "node-tuner-race-fault", "cth-r1")
                    spec = fault["spec"]["template"]["spec"]
                    fenv = {e["name"]: e["value"] for e in spec["containers"][0]["env"]}
                    assert "numgen random mod 100 < 50 " in fenv["NFT_RULESET"]
                    assert fenv["SYSCTLS"] == ""
                    # ...the fault table only to the client pods' node
                    term = spec["affinity"]["nodeAffinity"][
                        "requiredDuringSchedulingIgnoredDuringExecution"
                    ]["nodeSelectorTerms"][0]
                    assert term["matchExpressions"][0]["values"] == ["cth-r1-worker"]
                    # the fault's table (which turns nf_conntrack_acct on by itself) only once
                    # the sysctls' tuner is Ready, its saved originals taken before
                    fault_applied = order.index(("apply", "node-tuner-race-fault"))
                    assert ("get", "node-tuner-race") in order[:fault_applied]
                if phase.name == "coredns":
                    assert (
                        api.get("apps/v1", "Deployment", "coredns", "kube-system")["spec"][
                            "replicas"
                        ]
                        == 3
                    )
                api_http_svc_ip = api.get("v1", "Service", "http-server", "cth-r1")["spec"][
                    "clusterIP"
                ]
                results = []  # each pod's worker as a phase runs it: launched, cued, answered
                for wp in cluster.worker_plans():
                    worker = cluster.launch_worker(wp)
                    worker.wait_ready(float("inf"))
                    worker.go(0.0)
                    results.append(worker.result(60))
                assert results == [{"lookups": 10}] * scn.cluster.client_pods
            after = {k for k in api.objects if k[0] in ("Pod", "DaemonSet")}
            # what the phase added is gone, but its client pods and node tuners: the next
            # phase keeps them while it needs the same ones, as netns keeps its pods
            clients = {k for k in after if k[0] == "Pod" and k[2].startswith("client-")}
            assert len(clients) == scn.cluster.client_pods
            tuners = {k for k in after if k[0] == "DaemonSet" and k[2].startswith("node-tuner-")}
            assert {k[2] for k in tuners} == (
                {"node-tuner-race", "node-tuner-race-fault"} if phase.name == "race"
                else {"node-tuner-sysctls"} if phase.name == "sysctls" else set()
            ), phase.name  # fmt: skip
            # (the last phase's tuners, kept into this one, were gone before it asked others)
            kept = {
                k for k in before | after if k[0] == "DaemonSet" and k[2].startswith("node-tuner-")
            }
            # (and a phase with other client pods made them under new names, the last
            # phase's gone)
            pods_any = {k for k in before | after if k[0] == "Pod"}
            assert after - pods_any - kept == before - pods_any - kept, phase.name
            assert (
                api.get("apps/v1", "Deployment", "coredns", "kube-system")["spec"]["replicas"] == 2
            )
    plans = [json.loads(i.splitlines()[0]) for i in runner.inputs if i]  # the plan, then the cue
    fqdn = [p for p in plans if p["phase"] == "fqdn"]
    assert fqdn[0]["dns"]["plan"]["names"] == ["http-server.cth-r1.svc.cluster.local."]
    assert fqdn[0]["http"]["plan"]["mode"] == "pooled"
    assert sum(p["dns"]["plan"]["rate"] for p in fqdn) == pytest.approx(scn.load.dns.rate)
    # each pod's worker runs in its own namespace, with the resolv.conf kubelet wrote
    assert {p["dns"]["pods"][0]["netns"] for p in plans} == {None}
    assert {p["dns"]["pods"][0]["resolv"] for p in plans} == {resolv}
    http_ip = fqdn[0]["http"]["targets"][0]["ip"]
    assert http_ip == api_http_svc_ip
    assert len({p["dns"]["pods"][0]["ip"] for p in fqdn}) == scn.cluster.client_pods


def test_kubeconfig_refuses_disruption_without_flag() -> None:
    api = FakeAPI(cluster_objects([node("w1"), node("w2")]))
    backend = KubeconfigBackend(
        KubeconfigSettings(Images("reg/lg:glibc", "reg/lg:musl")),
        runner=FakeRunner(),
        api_factory=lambda _k, _c: api,
    )
    with pytest.raises(UnsafeRequest) as e, backend.realize(plan_run(scenario()), "r1"):
        pass
    assert "race-window" in str(e.value) or "INJECT" in str(e.value)
    assert api.calls == []  # nothing touched


def test_kubeconfig_run_labels_everything_and_removes_it() -> None:
    api = FakeAPI(cluster_objects([node("w1"), node("w2"), node("cp", taint=True)]))
    runner = FakeRunner({("kubectl",): STAT})
    backend = KubeconfigBackend(
        KubeconfigSettings(Images("reg/lg:glibc", "reg/lg:musl"), allow_disruptive=True),
        runner=runner,
        api_factory=lambda _k, _c: api,
    )
    before = set(api.objects)
    s = scenario()
    with backend.realize(plan_run(s), "r1") as cluster:
        assert cluster.real_nodes() == ["w1", "w2"]  # the tainted control plane is skipped
        assert cluster.node_counters()["w1"]["max"] == 2048
        created = [api.objects[k] for k in set(api.objects) - before]
        assert created
        assert all(o["metadata"]["labels"]["conntrack-harness/run-id"] == "r1" for o in created)
        with cluster.phase(plan_run(s).phase("sysctls")):
            ds = api.get("apps/v1", "DaemonSet", "node-tuner-sysctls", "cth-r1")
            spec = ds["spec"]["template"]["spec"]
            assert spec["hostNetwork"]
            assert spec["containers"][0]["securityContext"]["privileged"]
            env = spec["containers"][0]["env"][0]["value"]
            assert "net.netfilter.nf_conntrack_max=4096" in env  # real nodes: via the tuner
    assert set(api.objects) == before
    assert any(c[:2] == ["kubectl", "--kubeconfig"] or c[0] == "kubectl" for c in runner.calls)


def test_an_existing_clusters_nodes_forget_only_the_runs_own_flows_before_a_phase() -> None:
    api = FakeAPI(cluster_objects([node("w1"), node("w2")]))
    runner = FakeRunner({("kubectl",): STAT})
    backend = KubeconfigBackend(
        KubeconfigSettings(Images("reg/lg:glibc", "reg/lg:musl"), allow_disruptive=True),
        runner=runner,
        api_factory=lambda _k, _c: api,
    )
    s = scenario(phases=[{"name": "a"}, {"name": "b", "remediations": ["fqdn"]},
                         {"name": "c", "remediations": [
                             {"kind": "resolver-option", "options": [{"name": "use-vc"}]}]}])  # fmt: skip
    scripts: list[set[str]] = []
    with backend.realize(plan_run(s), "r1") as cluster:
        for phase in s.phases:
            with cluster.phase(plan_phase(s, phase)):
                n = len(runner.calls)
                forgotten = cluster.reset()
                forgets = [c for c in runner.calls[n:] if c[-3:-1] == ["sh", "-c"]]
                # once in each node, through its probe; never a flush
                assert len(forgets) == 2
                assert not any("-F" in c for c in runner.calls[n:])
                assert set(forgotten) == {"w1", "w2"}
                clients = api.list("v1", "Pod", "cth-r1", "conntrack-harness/role=client")
                http = api.list("v1", "Pod", "cth-r1", "conntrack-harness/role=http-server")
                svc = api.get("v1", "Service", "http-server", "cth-r1")["spec"]["clusterIP"]
                script = set(forgets[0][-1].split("; "))
                for pod in clients:
                    assert f"conntrack -D -s {pod['status']['podIP']}" in script
                for pod in http:
                    assert f"conntrack -D -d {pod['status']['podIP']}" in script
                assert f"conntrack -D -d {svc}" in script
                scripts.append(script)
    # the last phase's client pods were replaced (another resolver option): their addresses
    # are still forgotten, as the flows they left are the run's own
    assert scripts[1] <= scripts[2]
    assert len({x for x in scripts[2] if " -s " in x}) > len(clients)


def test_disruptive_steps_of_a_quiet_scenario() -> None:
    quiet = scenario(phases=[{"name": "p", "remediations": ["pooling"]}])
    assert disruptive_steps(plan_run(quiet)) == []
    external = scenario(phases=[{"name": "p"}], load={"dns": {"names": ["api.example.com"]}})
    steps = disruptive_steps(plan_run(external))
    assert len(steps) == 1
    assert "external names" in steps[0]


def test_kubeconfig_quiet_scenario_leaves_coredns_alone() -> None:
    api = FakeAPI(cluster_objects([node("w1"), node("w2")]))
    backend = KubeconfigBackend(
        KubeconfigSettings(Images("reg/lg:glibc", "reg/lg:musl")),
        runner=FakeRunner(),
        api_factory=lambda _k, _c: api,
    )
    quiet = scenario(phases=[{"name": "p", "remediations": ["pooling"]}])
    with (
        backend.realize(plan_run(quiet), "r1") as cluster,
        cluster.phase(plan_phase(quiet, quiet.phases[0])),
    ):
        assert len(api.list("v1", "Pod", "cth-r1", "conntrack-harness/role=client")) == 4
    assert not any(ns == "kube-system" for _, _, ns, _ in api.calls)
    assert api.get("v1", "Namespace", "cth-r1") is None


def test_nodelocal_stand_in_on_air_gapped_kind(scn: Any) -> None:
    """node-cache's image cannot be had: node-cache's Corefile runs on CoreDNS's image, and a
    node tuner adds node-cache's interface and NOTRACK rules first and removes them after."""
    coredns_image = "registry.k8s.io/coredns/coredns:v1.13.1"
    imgs = Images("lg:glibc", "lg:musl", nodelocal_stand_in=coredns_image)
    runner = FakeRunner({("kubectl",): json.dumps({"lookups": 10})})
    api = kind_api()
    phase = next(p for p in scn.phases if p.name == "nodelocal")
    with (
        make_kind(api, runner, images=imgs).realize(plan_run(scn), "r1") as cluster,
        cluster.phase(plan_phase(scn, phase)),
    ):
        ds = api.get("apps/v1", "DaemonSet", "node-local-dns", "kube-system")
        assert "stand-in" in ds["metadata"]["annotations"]["conntrack-harness/stand-in"]
        pod = ds["spec"]["template"]["spec"]
        c = pod["containers"][0]
        assert c["image"] == coredns_image
        assert c["args"] == ["-conf", "/etc/coredns/Corefile"]
        tuner = api.get("apps/v1", "DaemonSet", "node-tuner--nodelocal", "cth-r1")
        # only on the nodes whose interface the tuner made: not on the control plane
        assert pod["affinity"] == tuner["spec"]["template"]["spec"]["affinity"]
        assert "cth-r1-control-plane" not in json.dumps(pod["affinity"])
        upstream = api.get("v1", "Service", "kube-dns-upstream", "kube-system")["spec"]
        corefile = api.get("v1", "ConfigMap", "node-local-dns", "kube-system")["data"]["Corefile"]
        assert "__PILLAR__" not in corefile
        assert corefile.count(f"forward . {upstream['clusterIP']}") == 4
        tuner = api.get("apps/v1", "DaemonSet", "node-tuner--nodelocal", "cth-r1")
        env = {
            e["name"]: e["value"] for e in tuner["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["LINK_NAME"] == "nodelocaldns"
        addrs = [ln.split()[2] for ln in env["LINK_BATCH"].splitlines() if ln.startswith("addr")]
        assert addrs == ["169.254.20.10/32", f"{cluster.kube_dns_ip}/32"]
        assert "ip daddr 169.254.20.10 udp dport 53 notrack" in env["NFT_RULESET"]
        assert env["NFT_TABLE"] in env["NFT_RULESET"]
        applied = [f"{c[1]}/{c[3]}" for c in api.calls if c[0] == "apply"]
        # the interface exists before CoreDNS binds it, the upstream Service before the Corefile
        tuner_at = applied.index("DaemonSet/node-tuner--nodelocal")
        assert applied.index("Service/kube-dns-upstream") < tuner_at
        assert tuner_at < applied.index("ConfigMap/node-local-dns")
        assert tuner_at < applied.index("DaemonSet/node-local-dns")
    assert api.get("apps/v1", "DaemonSet", "node-local-dns", "kube-system") is None
    assert api.get("apps/v1", "DaemonSet", "node-tuner--nodelocal", "cth-r1") is None


class NamespaceWatch(FakeAPI):
    """Records each look at the run's namespace after its delete (a wait for it to go)."""

    def __init__(self, objects: Any) -> None:
        super().__init__(objects)
        self.looks_after_delete = 0

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Any:
        if kind == "Namespace" and ("delete", "Namespace", None, name) in self.calls:
            self.looks_after_delete += 1
        return super().get(api_version, kind, name, namespace)


@pytest.mark.parametrize("keep", [False, True])
def test_the_namespace_is_deleted_not_waited_for(keep: bool) -> None:
    """Deleted or kept, a kind cluster's run namespace is deleted and not waited for (~6 s
    before a delete, 8-17 s on a kept cluster): what touched a node in it was waited for
    already, and a next run on a kept cluster has a namespace of its own."""
    api = NamespaceWatch(kind_api().objects.values())
    runner = FakeRunner()
    backend = make_kind(api, runner, build_images=False)
    backend.settings.keep_cluster = keep
    with backend.realize(plan_run(scenario()), "r1"):
        pass
    assert ("delete", "Namespace", None, "cth-r1") in api.calls
    assert api.looks_after_delete == 0
    verbs = [c[:3] for c in runner.calls]
    assert (["kind", "delete", "cluster"] in verbs) is not keep


def test_node_tuners_are_kept_while_a_phase_asks_the_same_of_the_nodes() -> None:
    """Phases with the same sysctls and the same fault share one set of node tuners (made
    once, Ready once); a phase that asks something else (no fault, another probability)
    deletes them, and waits until they are gone, before its own; none is left after."""
    fault = {"kind": "race-window", "probability": 0.5}
    phases = [
        {"name": "a", "faults": [fault]},
        {"name": "b", "faults": [fault], "remediations": [{"kind": "resolver-option",
         "options": [{"name": "single-request-reopen"}]}]},
        {"name": "c"},
        {"name": "d", "faults": [fault]},
        {"name": "e", "faults": [{**fault, "probability": 0.2}]},
    ]  # fmt: skip
    scn = scenario(phases=phases)
    api = kind_api()
    tuners_at: dict[str, set[str]] = {}
    with make_kind(api, FakeRunner()).realize(plan_run(scn), "r1") as cluster:
        for phase in scn.phases:
            with cluster.phase(plan_phase(scn, phase)):
                tuners_at[phase.name] = {
                    k[2] for k in api.objects if k[0] == "DaemonSet" and k[1] == "cth-r1"
                }
    made = [c[3] for c in api.calls if c[:2] == ("apply", "DaemonSet")]
    deleted = [c[3] for c in api.calls if c[:2] == ("delete", "DaemonSet")]
    assert tuners_at == {
        "a": {"node-tuner-a", "node-tuner-a-fault"},
        "b": {"node-tuner-a", "node-tuner-a-fault"},  # a's, kept
        "c": set(),  # no fault: a's deleted before c's load
        "d": {"node-tuner-d", "node-tuner-d-fault"},
        "e": {"node-tuner-e", "node-tuner-e-fault"},  # another probability: new ones
    }
    tuner_made = [n for n in made if n.startswith("node-tuner-")]
    assert tuner_made == ["node-tuner-a", "node-tuner-a-fault", "node-tuner-d",
                          "node-tuner-d-fault", "node-tuner-e", "node-tuner-e-fault"]  # fmt: skip
    assert sorted(n for n in deleted if n.startswith("node-tuner-")) == sorted(tuner_made)
    assert [k for k in api.objects if k[0] == "DaemonSet" and k[1] == "cth-r1"] == []


def test_client_pods_are_kept_while_a_phase_needs_the_same_ones(scn: Any) -> None:
    """A phase whose client pods would be the same (image, DNS config) keeps the last
    phase's, as netns keeps its pods, and moves their phase label; one that needs others
    (another dnsConfig) gets new ones, after the old ones are gone; none is left after."""
    api = kind_api()
    made: dict[str, bool] = {}
    names: dict[str, list[str]] = {}
    with make_kind(api, FakeRunner()).realize(plan_run(scn), "r1") as cluster:
        for phase in scn.phases:
            n = len(api.calls)
            last = set(names[scn.phases[len(names) - 1].name]) if names else set()
            with cluster.phase(plan_phase(scn, phase)):
                calls = api.calls[n:]
                pods = api.list("v1", "Pod", "cth-r1", "conntrack-harness/phase=" + phase.name)
                assert len(pods) == scn.cluster.client_pods, phase.name
                names[phase.name] = sorted(p["metadata"]["name"] for p in pods)
                # only this phase's pods exist while it runs: another set was gone before
                assert len(api.list("v1", "Pod", "cth-r1")) == scn.cluster.client_pods
                deleted = [c[3] for c in calls if c[:2] == ("delete", "Pod")]
                applied = [
                    i for i, c in enumerate(calls) if c[:2] == ("apply", "Pod") and c[3] not in last
                ]
                made[phase.name] = bool(applied)
                if last and applied:
                    # the new set has its own names, and the last set's deletion was asked
                    # before the new one was made (their grace period overlaps its start)
                    assert last.isdisjoint(names[phase.name]), phase.name
                    assert sorted(deleted) == sorted(last), phase.name
                    first_delete = calls.index(("delete", "Pod", "cth-r1", sorted(last)[0]))
                    assert first_delete < applied[0], phase.name
                else:
                    assert deleted == [], phase.name
                    assert not last or names[phase.name] == sorted(last), phase.name
    # baseline makes them; reopen and nodelocal change the pods' DNS config, fqdn goes back
    # to the cluster's; coredns, sysctls and race change nothing in the pods
    assert made == {
        "baseline": True,
        "reopen": True,
        "nodelocal": True,
        "fqdn": True,
        "coredns": False,
        "sysctls": False,
        "race": False,
    }
    assert api.list("v1", "Pod", "cth-r1") == []
