"""The kubeconfig backend's reach into an existing cluster's nodes: the probe pods, privileged
only with --allow-disruptive; images the nodes cannot get fail the wait early; --image."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from cthcommon.errors import BackendError, BadInput, MissingTool
from harness.backends.base import BackendOptions
from harness.backends.kube import readiness, tuner
from harness.backends.kube.kubeconfig import preflight
from harness.backends.kube.nodeaccess import ProbeNodeAccess
from harness.backends.kube.placement import NodeMap
from harness.backends.registry import IMAGE_ROLES, check_options, image_overrides
from harness.kubeapi.wait import wait_for
from harness.upstream import ComponentMissing
from tests.nft_listings import fault_listing
from tests.unit.backends.kube.kube_fakes import FakeRunner

pytestmark = pytest.mark.unit

STAT = (
    "entries  searched found new invalid ignore delete delete_list insert insert_failed drop "
    "early_drop icmp_error expect_new expect_create expect_delete search_restart\n"
    "0000003b  00000000 00000000 00000000 00000002 00000000 00000000 00000000 00000007 "
    "00000000 00000004 00000000 00000000 00000000 00000000 00000000 00000000\n"
    "59\n2048\n"
)


def _access(privileged: bool) -> tuple[ProbeNodeAccess, FakeRunner]:
    runner = FakeRunner(
        {
            ("...", "nft", "list", "table"): fault_listing(5, 12, 7),
            ("...", "conntrack", "-L"): "udp 17 29 src=10.0.0.1 dst=10.96.0.10 ...\n",
            ("...", "cat", "/proc/net/stat/nf_conntrack"): STAT,
        }
    )
    pods = {"w1": "node-probe-abc"}
    return ProbeNodeAccess(runner, "/kc", "cth-r1", pods.__getitem__, privileged=privileged), runner


def test_an_unprivileged_probe_reads_counters_only_and_says_what_it_cannot() -> None:
    access, runner = _access(privileged=False)
    assert access.stat("w1")["max"] == 2048
    assert access.fault_counters("w1", "cth_race_fault") == {}
    assert access.listing("w1") == ""
    assert set(access.evidence("w1")) == {"nf_conntrack-stat.txt"}
    # nothing but the counters was asked of the node, and only through its probe pod
    assert all(c[c.index("exec") + 1] == "node-probe-abc" for c in runner.calls)
    assert not any("nft" in c or "conntrack" in c for c in runner.calls)
    limits = access.limits()
    assert set(limits) == {"conntrack_states", "node_rules"}
    assert all("--allow-disruptive" in why for why in limits.values())
    access.flush("w1")  # a real node's table is never flushed
    assert not any("-F" in c for c in runner.calls)


def test_a_privileged_probe_lists_the_table_the_rules_and_the_fault() -> None:
    access, runner = _access(privileged=True)
    assert access.fault_counters("w1", "cth_race_fault") == {"hits": 5, "open": 12, "answered": 7}
    assert access.listing("w1").startswith("udp 17 29")
    assert set(access.evidence("w1")) == {"iptables-save.txt", "conntrack-S.txt", "nft-ruleset.txt"}
    assert access.limits() == {}
    nft = next(c for c in runner.calls if "nft" in c)
    assert nft[:2] == ["kubectl", "--kubeconfig"]
    assert nft[-5:] == [
        "nft",
        "list",
        "table",
        "inet",
        "cth_race_fault",
    ]


@pytest.mark.parametrize("privileged", [False, True])
def test_the_probe_daemonset_is_privileged_only_when_asked(privileged: bool) -> None:
    nodes = NodeMap({"node-1": "w1"}, {"node-1": "w1"})
    ds = tuner.probe_daemonset("r1", "cth-r1", nodes, "reg/lg:glibc", privileged=privileged)
    spec = ds["spec"]["template"]["spec"]
    assert spec["hostNetwork"] is True
    security = spec["containers"][0]["securityContext"]
    assert security.get("privileged", False) is privileged
    assert security.get("allowPrivilegeEscalation", True) is privileged


def _pod(name: str, reason: str | None, image: str = "nginx:1.27-alpine") -> dict[str, Any]:
    state = {"waiting": {"reason": reason, "message": f"{reason} msg"}} if reason else {}
    return {
        "metadata": {"name": name},
        "status": {"containerStatuses": [{"name": "http", "image": image, "state": state}]},
    }


def test_a_pull_the_kubelet_retries_fails_the_wait_after_the_grace() -> None:
    watch = readiness.PullWatch(grace_s=30)
    assert watch([_pod("a", "ErrImagePull")], now=100.0) is None
    assert watch([_pod("a", "ImagePullBackOff")], now=120.0) is None
    why = watch([_pod("a", "ImagePullBackOff"), _pod("b", "ErrImagePull")], now=130.0)
    assert why is not None
    assert why.startswith("pod a/http cannot get its image nginx:1.27-alpine: ImagePullBackOff")
    assert "--image ROLE=REF" in why
    # a pull that succeeded in between starts the grace again
    watch2 = readiness.PullWatch(grace_s=30)
    assert watch2([_pod("a", "ErrImagePull")], now=0.0) is None
    assert watch2([_pod("a", None)], now=20.0) is None
    assert watch2([_pod("a", "ErrImagePull")], now=40.0) is None


def test_an_image_that_can_never_be_had_fails_the_wait_at_once() -> None:
    why = readiness.PullWatch()([_pod("a", "InvalidImageName", "Bad:Name")], now=0.0)
    assert why is not None
    assert "InvalidImageName" in why
    assert "Bad:Name" in why


def test_wait_for_stops_when_stuck_says_why() -> None:
    t = [0.0]
    with pytest.raises(BackendError) as e:
        wait_for(
            "the HTTP server",
            lambda: "0/1 ready",
            timeout_s=300,
            clock=lambda: t[0],
            sleep=lambda s: t.__setitem__(0, t[0] + s),
            stuck=lambda: "pod a cannot get its image" if t[0] >= 1 else None,
        )
    assert str(e.value).startswith("the HTTP server cannot become ready: pod a cannot get")
    assert "last probe: 0/1 ready" in str(e.value)
    assert t[0] < 2  # at once, not at the timeout


def test_image_overrides() -> None:
    assert image_overrides([]) == {}
    given = image_overrides(["http-server=reg.example/nginx:1", "node-cache=reg.example/nc:1"])
    assert given == {"http-server": "reg.example/nginx:1", "node-cache": "reg.example/nc:1"}
    assert set(IMAGE_ROLES) == {"http-server", "node-cache", "node-cache-stand-in"}
    for bad in ("http-server", "http-server=", "=x", "nginx=reg/x:1", "http-server=a b"):
        with pytest.raises(BadInput) as e:
            image_overrides([bad])
        assert e.value.field == "--image"
    with pytest.raises(BadInput, match="twice"):
        image_overrides(["http-server=a:1", "http-server=b:1"])
    with pytest.raises(BadInput, match="not both"):
        image_overrides(["node-cache=a:1", "node-cache-stand-in=b:1"])


@pytest.mark.parametrize("backend", ["netns", "kind"])
def test_image_is_a_kubeconfig_flag(backend: str) -> None:
    options = BackendOptions(images={"http-server": "reg.example/nginx:1"})
    with pytest.raises(BadInput, match="--image only applies to --backend kubeconfig"):
        check_options(backend, options)
    check_options("kubeconfig", options)


def test_without_kubectl_on_path_the_pinned_one_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.upstream

    pinned = tmp_path / "cache" / "kubectl"
    pinned.parent.mkdir()
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.setattr(harness.upstream, "locate", lambda name, *a: pinned)
    runner = FakeRunner()
    preflight("/kc", runner)
    assert os.environ["PATH"].split(os.pathsep)[0] == str(pinned.parent)
    assert runner.calls[0][0] == "kubectl"  # found on the PATH it was given
    # with one on PATH, PATH is left as it is
    (empty / "kubectl").write_text("#!/bin/sh\n")
    (empty / "kubectl").chmod(0o755)
    monkeypatch.setenv("PATH", str(empty))
    preflight("/kc", FakeRunner())
    assert os.environ["PATH"] == str(empty)


def test_without_any_kubectl_the_run_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.upstream

    def missing(name: str, *a: object) -> Path:
        raise ComponentMissing(
            f"{name} is not in the cache; run `conntrack-harness upstream build`"
        )

    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(harness.upstream, "locate", missing)
    with pytest.raises(MissingTool, match="upstream build"):
        preflight("/kc", FakeRunner())


def test_a_kind_nodes_init_is_asked_of_docker_once_while_it_lives() -> None:
    import subprocess

    from harness.backends.kube.nodeaccess import DockerNodeAccess

    pid = {"n": os.getpid()}
    runner = FakeRunner({("docker", "inspect"): lambda argv, _in: f"{pid['n']}\n"})
    access = DockerNodeAccess(runner)

    def asked() -> int:
        return len([c for c in runner.calls if c[:2] == ["docker", "inspect"]])

    for _ in range(3):
        assert access.netns("kind-worker") == f"/proc/{os.getpid()}/ns/net"
    assert asked() == 1
    with subprocess.Popen(["sleep", "30"]) as child:
        try:
            # a container that restarted: its old init is gone, so Docker is asked again
            gone = 2**22 + 1  # above pid_max: no such process
            access._inits["kind-worker"] = (gone, 1)
            pid["n"] = child.pid
            assert access.netns("kind-worker") == f"/proc/{child.pid}/ns/net"
            assert asked() == 2
            # the cached PID lives but is another process now (the kernel reused it): its
            # start time tells, and Docker is asked again instead of entering its namespace
            start = access._inits["kind-worker"][1]
            assert start is not None
            access._inits["kind-worker"] = (os.getpid(), start)
            assert access.netns("kind-worker") == f"/proc/{child.pid}/ns/net"
            assert asked() == 3
            # Docker names a PID that is gone by the time it is read: no namespace
            pid["n"] = gone
            access._inits.clear()
            assert access.netns("kind-worker") is None
        finally:
            child.kill()


def test_a_privileged_probe_forgets_only_the_flows_it_is_given() -> None:
    said = "conntrack v1.4.7 (conntrack-tools): {} flow entries have been deleted.\n"
    runner = FakeRunner({("...", "sh", "-c"): said.format(3) + said.format(0) + said.format(4)})
    access = ProbeNodeAccess(
        runner, "/kc", "cth-r1", {"w1": "probe-w1"}.__getitem__, privileged=True
    )
    deleted = access.forget("w1", {"10.244.1.7", "10.244.1.5"}, {"10.96.7.1"})
    assert deleted == 7  # what the node's conntrack said it deleted
    (argv,) = runner.calls
    assert argv[argv.index("exec") + 1] == "probe-w1"  # in the node, through its probe pod
    assert argv[-3:-1] == ["sh", "-c"]
    # by original source or original destination, one address each: never a flush
    assert argv[-1] == (
        "conntrack -D -s 10.244.1.5; conntrack -D -s 10.244.1.7; conntrack -D -d 10.96.7.1; true"
    )
    assert access.forget("w1", set(), set()) == 0
    assert len(runner.calls) == 1  # nothing to forget: nothing run


def test_an_unprivileged_probe_forgets_nothing_and_an_odd_address_is_refused() -> None:
    runner = FakeRunner()
    quiet = ProbeNodeAccess(runner, "/kc", "cth-r1", lambda _n: "probe", privileged=False)
    assert quiet.forget("w1", {"10.244.1.5"}, set()) is None
    loud = ProbeNodeAccess(runner, "/kc", "cth-r1", lambda _n: "probe", privileged=True)
    with pytest.raises(BadInput, match="not an IP address"):
        loud.forget("w1", {"10.244.1.5; conntrack -F"}, set())
    assert runner.calls == []
