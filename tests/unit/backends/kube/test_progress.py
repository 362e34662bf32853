"""What a kind run prints while it works: a line per setup step (the minutes before the first
phase), and each phase's final state once while the pods hand in their results. Fakes only."""

from __future__ import annotations

import io
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from kube_fakes import FakeAPI, FakeRunner, cluster_objects, node, scenario

from cthcommon.errors import BackendError
from harness import cli, runner
from harness.backends import registry
from harness.backends.base import BackendOptions
from harness.backends.kube import kind as kind_mod
from harness.backends.kube.cluster import Images
from harness.backends.kube.kind import KindBackend, KindSettings
from harness.backends.kube.kubeconfig import KubeconfigBackend, KubeconfigSettings
from harness.backends.kube.names import LABEL_NODE
from harness.backends.kube.podworker import START_IN_S
from harness.backends.kube.runcluster import KubeRunCluster
from harness.plan.phase import plan_run
from harness.report.live import LiveRun
from harness.report.progress import PlainProgress


def kind_api() -> FakeAPI:
    return FakeAPI(
        cluster_objects(
            [
                node("cth-r1-control-plane", taint=True),
                node("cth-r1-worker", {LABEL_NODE: "node-1"}),
                node("cth-r1-worker2", {LABEL_NODE: "node-2"}),
            ]
        )
    )


def steps(lines: list[str]) -> list[str]:
    """The lines without their timings: ``[kind] x: done (1.2s)`` -> ``[kind] x: done``."""
    return [re.sub(r" \(\d+\.\ds( in all)?\)$", "", ln) for ln in lines]


def test_kind_setup_steps_are_reported_system_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    """The system Docker: no dockerd, no node image; the loadgen and HTTP server images are
    checked in that daemon (the fake has them) and loaded from it."""
    monkeypatch.setattr(kind_mod.loadgenimage, "present", lambda _d, _tag, _p: True)
    monkeypatch.setattr(kind_mod.loadgenimage, "build", lambda _d, tag, _p: tag)
    http = kind_mod.loadgenimage.http_server_tag()
    lines: list[str] = []
    backend = KindBackend(
        KindSettings(private_docker=False, project_dir=Path("/src")),
        runner=FakeRunner(),
        api_factory=lambda _kc: kind_api(),
        euid=lambda: 0,
        notice=lines.append,
    )
    s = scenario(phases=[{"name": "baseline"}])
    with backend.realize(plan_run(s), "r1"):
        setup = list(lines)
    assert steps(setup) == [
        "[kind] kind create cluster cth-r1 (3 nodes) ...",
        "[kind] kind create cluster cth-r1 (3 nodes): done",
        "[kind] waiting for 3 nodes Ready ...",
        "[kind] waiting for 3 nodes Ready: done",
        "[kind] waiting for CoreDNS Ready ...",
        "[kind] waiting for CoreDNS Ready: done",
        "[kind] loadgen image conntrack-harness/loadgen:glibc (built or checked) ...",
        "[kind] loadgen image conntrack-harness/loadgen:glibc (built or checked): "
        "conntrack-harness/loadgen:glibc present",
        "[kind] kind load conntrack-harness/loadgen:glibc into the nodes ...",
        "[kind] kind load conntrack-harness/loadgen:glibc into the nodes: done",
        "[kind] HTTP server image (built or checked) ...",
        f"[kind] HTTP server image (built or checked): {http} present",
        f"[kind] kind load {http} into the nodes ...",
        f"[kind] kind load {http} into the nodes: done",
        "[kind] the run's workload (namespace, CoreDNS, HTTP server, node sysctls) Ready ...",
        "[kind] the run's workload (namespace, CoreDNS, HTTP server, node sysctls) Ready: done",
        "[kind] cluster ready",
    ]
    assert lines[len(setup) :][0] == "[kind] teardown ..."
    assert lines[-1].startswith("[kind] teardown: done (")
    assert all(ln.endswith("s)") for ln in setup if ": done" in ln)
    assert lines[len(setup) - 1].endswith("s in all)")


class FakeDocker:
    host = "unix:///fake"

    def cli(self, *args: str, timeout_s: float = 120) -> str:
        return ""


def test_kind_setup_steps_are_reported_private_docker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The private path (the default): dockerd, kind CLI, node image, images built here."""
    monkeypatch.setenv("CONNTRACK_HARNESS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PATH", os.environ.get("PATH", ""))  # _private_docker prepends to it

    @contextmanager
    def running(_journal: Any) -> Iterator[FakeDocker]:
        yield FakeDocker()

    def build_node(_docker: Any, *, log: list[str]) -> str:
        log.append("node image conntrack-harness/kind-node:v1.35.4-abc already built")
        return "conntrack-harness/kind-node:v1.35.4-abc"

    monkeypatch.setattr(kind_mod.dockerd, "running", running)
    monkeypatch.setattr(kind_mod.kindparts, "build", lambda _c: tmp_path)
    monkeypatch.setattr(kind_mod, "locate", lambda _b: tmp_path / "kubectl")
    monkeypatch.setattr(kind_mod.kindnode, "build", build_node)
    monkeypatch.setattr(kind_mod.loadgenimage, "present", lambda _d, _tag, _p: False)
    monkeypatch.setattr(kind_mod.loadgenimage, "build", lambda _d, tag, _p: tag)
    monkeypatch.setattr(
        kind_mod.loadgenimage, "build_http_server", lambda _d: "conntrack-harness/http-server:x"
    )
    lines: list[str] = []
    backend = KindBackend(
        KindSettings(private_docker=True, project_dir=tmp_path),
        runner=FakeRunner(),
        api_factory=lambda _kc: kind_api(),
        euid=lambda: 0,
        notice=lines.append,
    )
    s = scenario(phases=[{"name": "baseline"}])
    with backend.realize(plan_run(s), "r1"):
        setup = steps(list(lines))
    kind = kind_mod.kindparts.pinned()["kind"]
    assert setup[:6] == [
        "[kind] starting the private dockerd ...",
        "[kind] starting the private dockerd: done",
        f"[kind] kind {kind} CLI (pinned, built here) ...",
        f"[kind] kind {kind} CLI (pinned, built here): done",
        "[kind] node image from the pinned upstream binaries ...",
        "[kind] node image from the pinned upstream binaries: "
        "conntrack-harness/kind-node:v1.35.4-abc already built",
    ]
    assert "[kind] kind create cluster cth-r1 (3 nodes) ..." in setup
    assert "[kind] loadgen image conntrack-harness/loadgen:glibc (built or checked) ..." in setup
    assert (
        "[kind] HTTP server image (built or checked): conntrack-harness/http-server:x present"
        in setup
    )
    assert (
        "[kind] loadgen image conntrack-harness/loadgen:glibc (built or checked): "
        "conntrack-harness/loadgen:glibc built"
    ) in setup
    assert "[kind] kind load conntrack-harness/http-server:x into the nodes: done" in setup
    assert setup[-1] == "[kind] cluster ready"


def test_a_failed_setup_step_is_named_and_the_teardown_reported() -> None:
    lines: list[str] = []

    def no_coredns(_kc: str) -> FakeAPI:
        api = kind_api()
        api.objects.pop(("Deployment", "kube-system", "coredns"))
        return api

    backend = KindBackend(
        KindSettings(private_docker=False, build_images=False, timeout_s=0),
        runner=FakeRunner(),
        api_factory=no_coredns,
        euid=lambda: 0,
        notice=lines.append,
    )
    with pytest.raises(BackendError), backend.realize(plan_run(scenario()), "r1"):
        pass
    last = steps(lines)[-4:]
    assert last[0] == "[kind] waiting for CoreDNS Ready ..."
    assert last[1].startswith("[kind] waiting for CoreDNS Ready: failed after ")
    assert last[2:] == ["[kind] teardown ...", "[kind] teardown: done"]


def test_kubeconfig_setup_steps_are_reported() -> None:
    lines: list[str] = []
    api = FakeAPI(cluster_objects([node("w1"), node("w2")]))
    backend = KubeconfigBackend(
        KubeconfigSettings(images=Images("r/lg:glibc", "r/lg:musl"), allow_disruptive=True),
        runner=FakeRunner(),
        api_factory=lambda _kc, _ctx: api,
        notice=lines.append,
    )
    with backend.realize(plan_run(scenario(phases=[{"name": "baseline"}])), "r1"):
        pass
    assert steps(lines) == [
        "[kubeconfig] the run's workload (namespace, CoreDNS, HTTP server, node sysctls) Ready ...",
        "[kubeconfig] the run's workload (namespace, CoreDNS, HTTP server, node sysctls) "
        "Ready: done",
        "[kubeconfig] node probe pods Ready ...",
        "[kubeconfig] node probe pods Ready: done",
        "[kubeconfig] teardown ...",
        "[kubeconfig] teardown: done",
    ]


# --- the notice's way from the CLI to the backend -------------------------------------------
def test_the_cli_prints_the_backend_setup_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fake_run(_record: Any, _scenario: Any, *, notice: Any, **_kw: Any) -> Any:
        notice("[kind] kind create cluster cth-x (3 nodes) ...")
        raise BackendError("stopped here")

    monkeypatch.setattr(runner, "run", fake_run)
    monkeypatch.setattr(runner, "require_root", lambda *_a: None)
    monkeypatch.chdir(tmp_path)
    sc = tmp_path / "s.yaml"
    sc.write_text(json.dumps({"name": "flags", "phases": [{"name": "baseline"}]}))
    assert cli.main(["run", str(sc), "--backend", "kind"]) == 3
    assert "[kind] kind create cluster cth-x (3 nodes) ...\n" in capsys.readouterr().err


def test_the_session_hands_the_notice_to_the_backend(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[Any] = []

    def make_cluster(*_a: Any, notice: Any, **_kw: Any) -> Any:
        seen.append(notice)
        raise BackendError("stop here")

    monkeypatch.setenv("CONNTRACK_HARNESS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(runner, "require_root", lambda *_a: None)
    monkeypatch.setattr(runner, "preflight", lambda *_a, **_kw: None)
    monkeypatch.setattr(runner, "check_backend_ready", lambda *_a: None)
    monkeypatch.setattr(runner, "changes_host", lambda *_a: False)
    monkeypatch.setattr(runner, "restore_stale", runner.RestoreReport)
    monkeypatch.setattr(runner, "make_cluster", make_cluster)
    monkeypatch.setattr(runner.sysctl, "read", lambda _k: "262144")

    def say(_line: str) -> None: ...

    with pytest.raises(BackendError), runner.ClusterSession(scenario(), notice=say):
        pass
    assert seen == [say]
    # and the registry gives it to the kube backends it builds
    for backend, options in (
        ("kind", BackendOptions()),
        ("kubeconfig", BackendOptions(loadgen_image="reg/lg")),
    ):
        c = registry._make_kube(
            backend,
            scenario(phases=[{"name": "baseline"}]),
            run_id="r1",
            journal=None,  # type: ignore[arg-type]
            guard=None,  # type: ignore[arg-type]
            options=options,
            notice=say,
        )
        assert isinstance(c, KubeRunCluster)
        assert c._realizer.stages.notice is say  # type: ignore[attr-defined]


# --- the end of a phase: its final state once ----------------------------------------------
class SlowSampler:
    """Each sample is 0.25 s of phase time; the pods answer a while after the duration."""

    def __init__(self, release: threading.Event, release_after: int) -> None:
        self.samples = 0
        self.release, self.release_after = release, release_after
        self.stopped = False

    @property
    def duration(self) -> float:
        return 0.25 * self.samples

    def sample(self) -> dict[str, int]:
        self.samples += 1
        if self.samples >= self.release_after:
            self.release.set()
        return {"node-1": min(4096, 500 * self.samples)}

    def stop(self) -> None:
        self.stopped = True


def test_a_phase_final_state_is_printed_once_while_the_pods_finish() -> None:
    release = threading.Event()
    sampler = SlowSampler(release, release_after=20)  # 2 s of load, answers at 5 s

    class Worker:
        """A launched pod worker: cued once, answers when the sampler releases it."""

        def __init__(self, pod: str) -> None:
            self.pod = pod
            self.cued_at: float | None = None
            self.start_in_s: float | None = None

        def go(self, start_in_s: float) -> None:
            assert self.cued_at is None  # one cue per worker
            self.cued_at, self.start_in_s = time.monotonic(), start_in_s

        def returncode(self) -> int | None:
            return 0 if release.is_set() else None

        def result(self, timeout_s: float) -> Any:
            assert release.wait(timeout_s)
            assert self.cued_at is not None
            assert self.start_in_s is not None
            return {"pod": self.pod, "start_at": self.cued_at + self.start_in_s}

    cluster = KubeRunCluster(
        SimpleNamespace(name="kind"),  # type: ignore[arg-type]
        plan_run(scenario()),
        "r1",
        sample_hz=1000,
    )
    calls: list[tuple[float, dict[str, Any]]] = []
    out = io.StringIO()
    live = LiveRun()
    live.reporter = PlainProgress(out, clock=lambda: 0.0)

    def progress(phase: str, elapsed: float, total: float, info: dict[str, Any]) -> None:
        calls.append((elapsed, info))
        live.progress(phase, elapsed, total, info)

    plan = SimpleNamespace(name="baseline", load=SimpleNamespace(duration_s=2.0))
    workers = [Worker(f"p{i}") for i in range(3)]
    before = time.monotonic()
    answers, cued = cluster._drive(
        plan,  # type: ignore[arg-type]
        workers,  # type: ignore[arg-type]
        sampler=sampler,  # type: ignore[arg-type]
        progress=progress,
        cmax=4096,
    )
    live.close()
    assert [a["pod"] for a in answers] == ["p0", "p1", "p2"]
    # every pod's worker is cued at once to start one lead later: one start time, the one the
    # phase places the load at on its own clock
    starts = [a["start_at"] for a in answers]
    assert max(starts) - min(starts) < 0.05, starts
    assert all(w.start_in_s == START_IN_S for w in workers)
    assert before + START_IN_S <= cued <= min(starts) + 0.05
    assert sampler.stopped
    during = [info for e, info in calls if e < 2.0]
    after = [info for e, info in calls if e == 2.0]
    assert during
    assert all("waiting" not in i for i in during)
    assert len(after) >= 5  # the backend goes on reporting (the metrics stay live) ...
    assert after[0]["waiting"] == 3  # ... and says who it is waiting for
    printed = out.getvalue().splitlines()
    finals = [ln for ln in printed if ln.startswith("[baseline] 2.0/2s")]
    assert finals == [  # ... but the final state is printed once
        "[baseline] 2.0/2s conntrack node-1 4000/4096 (98%); waiting for 3 pods' results"
    ]
