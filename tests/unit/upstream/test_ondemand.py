"""The first use of a pinned release builds what the backend needs of it (pure parts)."""

from __future__ import annotations

import pytest

from cthcommon.errors import BadInput
from harness.plan.phase import plan_run
from harness.upstream import build as builder
from harness.upstream import default_version, releases
from harness.upstream.errors import BuildFailed
from harness.upstream.ondemand import NETNS_BINARIES, ensure, needed

pytestmark = pytest.mark.unit


def _other() -> str:
    return next(v for v in sorted(releases()) if v != default_version())


def test_netns_needs_the_control_plane_kube_proxy_and_coredns() -> None:
    assert needed("netns") >= {"kube-apiserver", "kube-controller-manager", "kube-proxy"}
    assert {"etcd", "coredns"} <= needed("netns")
    assert "node-cache" not in needed("netns")  # NodeLocal has a stand-in
    assert needed("kubeconfig") == frozenset()


def test_an_unbuilt_release_is_built_with_progress_and_only_what_is_missing() -> None:
    ver = _other()
    rel = releases()[ver]
    have = {("etcd", rel.etcd, "etcd")}
    lines: list[str] = []
    ran: list[list[builder.Task]] = []

    def run(tasks: list[builder.Task]) -> list[builder.Outcome]:
        ran.append(tasks)
        return [builder.Outcome(t, "installed", 1.0, "") for t in tasks]

    out = ensure(
        "netns", ver, say=lines.append, is_installed=lambda c, v, b: (c, v, b) in have, run=run
    )
    built = {b for t in ran[0] for b in t.binaries}
    assert built == NETNS_BINARIES - {"etcd"}
    assert all(t.release.kubernetes == ver for t in ran[0])
    assert len(out) == len(ran[0])
    assert ver in lines[0]
    assert "kube-proxy" in lines[0]
    assert "first time" in lines[0]


def test_a_built_release_builds_nothing() -> None:
    def run(tasks: list[builder.Task]) -> list[builder.Outcome]:
        raise AssertionError("nothing to build")

    lines: list[str] = []
    assert ensure("netns", None, say=lines.append, is_installed=lambda c, v, b: True, run=run) == []
    assert lines == []


def test_a_failed_build_fails_the_run_naming_the_part() -> None:
    def run(tasks: list[builder.Task]) -> list[builder.Outcome]:
        return [builder.Outcome(t, "failed", 1.0, "go build failed") for t in tasks]

    with pytest.raises(BuildFailed, match="kubernetes"):
        ensure("netns", _other(), say=lambda _: None, is_installed=lambda c, v, b: False, run=run)


def test_an_unpinned_release_is_bad_input() -> None:
    with pytest.raises(BadInput, match="not pinned"):
        ensure("netns", "v1.99.0", say=lambda _: None, is_installed=lambda c, v, b: False)


def test_a_run_builds_the_release_it_runs_before_the_lock(monkeypatch: pytest.MonkeyPatch) -> None:
    """`compare --run`'s release wins over the scenario's cluster.kube_proxy.version."""
    from harness.backends import registry
    from harness.backends.base import KUBERNETES_RELEASE, BackendOptions
    from harness.scenario.model import Scenario
    from harness.upstream import ondemand

    asked: list[tuple[str, str | None]] = []
    monkeypatch.setattr(ondemand, "ensure", lambda b, v, **_k: asked.append((b, v)) or [])
    ver = _other()
    s = Scenario.model_validate(
        {"name": "x", "cluster": {"kube_proxy": {"version": ver}}, "phases": [{"name": "p"}]}
    )
    registry.check_backend_ready("netns", BackendOptions(), plan=plan_run(s))
    registry.check_backend_ready(
        "netns", BackendOptions(extra={KUBERNETES_RELEASE: default_version()}), plan=plan_run(s)
    )
    assert asked == [("netns", ver), ("netns", default_version())]
