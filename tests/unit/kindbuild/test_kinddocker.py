"""CTH_KIND_DOCKER: which Docker daemon and node image a kind run uses, and why. A fake
docker CLI (the runner) plays the daemon: answering or not, having the image or not,
pulling it or not."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cthcommon.errors import BackendError, BadInput, CommandFailed
from harness.backends.kube.kind import KindSettings
from harness.backends.kube.proc import Completed
from harness.kindbuild import kinddocker
from harness.plan.phase import plan_run
from harness.upstream import default_version

PINNED = f"kindest/node:{default_version()}"


class FakeDocker:
    """``docker info`` / ``image inspect`` / ``pull`` answers, every call recorded."""

    def __init__(self, *, answers: bool = True, has: bool = True, pulls: bool = False) -> None:
        self.answers, self.has, self.pulls = answers, has, pulls
        self.calls: list[list[str]] = []

    def __call__(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        timeout_s: float = 600,
        check: bool = True,
    ) -> Completed:
        args = list(argv)
        self.calls.append(args)
        if args[1] == "info":
            if not self.answers:
                raise CommandFailed(args, 1, "Cannot connect to the Docker daemon at X")
            return Completed(args, 0, "27.5.1\n", "")
        if args[1:3] == ["image", "inspect"]:
            if not self.has:
                raise CommandFailed(args, 1, f"Error: No such image: {args[-1]}")
            return Completed(args, 0, "sha256:abc\n", "")
        if args[1] == "pull":
            if not self.pulls:
                raise CommandFailed(args, 1, "Error response from daemon: dial tcp: no route")
            return Completed(args, 0, "", "")
        raise AssertionError(f"unexpected {args}")


@pytest.fixture(autouse=True)
def docker_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A docker CLI on PATH (the fake runner answers for it)."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "docker").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "bin" / "docker").chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))


def test_auto_takes_the_daemon_that_answers_with_the_pinned_image_present() -> None:
    d = FakeDocker()
    c = kinddocker.choose({"DOCKER_HOST": "unix:///u.sock"}, d)
    assert c.system
    assert c.node_image == PINNED
    assert c.lines() == [
        "docker: system (the Docker daemon at unix:///u.sock, Docker 27.5.1; CTH_KIND_DOCKER=auto)",
        f"node image: {PINNED} (kind's node image for the pinned release, present locally; "
        "nothing built)",
    ]
    assert ["docker", "image", "inspect", "--format", "{{.Id}}", PINNED] in d.calls
    assert not [c for c in d.calls if c[1] == "pull"]


def test_auto_pulls_the_pinned_image_when_absent() -> None:
    d = FakeDocker(has=False, pulls=True)
    c = kinddocker.choose({}, d)
    assert c.system
    assert c.node_image == PINNED
    assert ["docker", "pull", PINNED] in d.calls
    assert "pulled now" in c.node_image_note
    assert "unix:///var/run/docker.sock" in c.docker  # the default socket, named


def test_auto_falls_back_to_the_private_dockerd_when_no_daemon_answers() -> None:
    d = FakeDocker(answers=False)
    c = kinddocker.choose({"DOCKER_HOST": "unix:///u.sock"}, d)
    assert not c.system
    assert c.node_image is None  # built here
    assert c.docker == (
        "private dockerd (no Docker daemon answers at unix:///u.sock: `docker info`: "
        "Cannot connect to the Docker daemon at X)"
    )
    assert c.node_image_note.startswith("built here from the pinned upstream binaries (no Docker")
    assert len(d.calls) == 1  # nothing asked of a daemon that is not there


def test_auto_falls_back_when_the_image_is_neither_present_nor_pullable() -> None:
    c = kinddocker.choose({}, FakeDocker(has=False, pulls=False))
    assert not c.system
    assert c.node_image is None
    assert f"answers, but {PINNED} (kind's node image for the pinned release)" in c.why
    assert "could not be pulled: Error response from daemon: dial tcp: no route" in c.why


def test_auto_without_a_docker_cli_falls_back_saying_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    c = kinddocker.choose({}, FakeDocker())
    assert not c.system
    assert "no docker CLI on PATH" in c.why


def test_a_named_node_image_is_the_one_looked_for() -> None:
    named = "kindest/node:v1.36.4@sha256:" + "0" * 64
    d = FakeDocker()
    c = kinddocker.choose({"CTH_KIND_NODE_IMAGE": named}, d)
    assert c.system
    assert c.node_image == named
    assert "named by CTH_KIND_NODE_IMAGE" in c.node_image_note
    assert d.calls[-1][-1] == named
    # on the private fallback the named image is still the one used (never built over)
    p = kinddocker.choose({"CTH_KIND_NODE_IMAGE": named}, FakeDocker(answers=False))
    assert not p.system
    assert p.node_image == named


def test_private_forces_the_private_dockerd_asking_nothing() -> None:
    d = FakeDocker()
    c = kinddocker.choose({"CTH_KIND_DOCKER": "private"}, d)
    assert not c.system
    assert c.node_image is None
    assert c.docker == "private dockerd (CTH_KIND_DOCKER=private)"
    assert d.calls == []


def test_system_forced_fails_naming_what_is_missing() -> None:
    with pytest.raises(BackendError, match="CTH_KIND_DOCKER=system, but no Docker daemon"):
        kinddocker.choose({"CTH_KIND_DOCKER": "system"}, FakeDocker(answers=False))
    with pytest.raises(BackendError, match="is not present there and could not be pulled"):
        kinddocker.choose({"CTH_KIND_DOCKER": "system"}, FakeDocker(has=False))
    c = kinddocker.choose({"CTH_KIND_DOCKER": "system"}, FakeDocker())
    assert c.system
    assert "CTH_KIND_DOCKER=system" in c.docker


@pytest.mark.parametrize("value", ["yes", "Private", "docker", "none"])
def test_a_bad_mode_is_bad_input_naming_the_variable_and_the_allowed_values(value: str) -> None:
    with pytest.raises(BadInput) as e:
        kinddocker.choose({"CTH_KIND_DOCKER": value}, FakeDocker())
    assert e.value.exit_code == 2
    assert e.value.field == "CTH_KIND_DOCKER"
    assert e.value.allowed == ["auto", "private", "system"]


def test_empty_is_the_default_auto() -> None:
    assert kinddocker.mode({}) == kinddocker.mode({"CTH_KIND_DOCKER": ""}) == "auto"


def test_the_choice_survives_the_trip_from_preflight_to_the_settings() -> None:
    c = kinddocker.choose({}, FakeDocker())
    again = kinddocker.Choice.from_json(c.to_json())
    assert again == c
    s = KindSettings.from_env({}, again)
    assert not s.private_docker
    assert s.config.node_image == PINNED
    assert s.choice == c
    p = KindSettings.from_env({}, kinddocker.choose({}, FakeDocker(answers=False)))
    assert p.private_docker
    assert p.config.node_image is None


# --- a cluster on the system Docker is journaled, so `restore` deletes it after a kill -------
class RecordingJournal:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def record(self, op: str, **data: Any) -> None:
        self.entries.append({"op": op, **data})


def test_a_cluster_on_the_system_docker_is_journaled_before_it_is_created(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from kube_fakes import FakeAPI, FakeRunner, cluster_objects, node, scenario

    from harness.backends.kube import kind as kind_mod
    from harness.backends.kube.kind import KindBackend
    from harness.backends.kube.names import LABEL_NODE

    journal = RecordingJournal()
    guard = SimpleNamespace(journal=journal)
    monkeypatch.setattr(kind_mod, "SysctlGuard", SimpleNamespace)  # the fake is "a real guard"
    monkeypatch.setattr(kind_mod.dockerd, "sysctls_kept", lambda _j: nullcontext({}))
    monkeypatch.setattr(kind_mod.loadgenimage, "present", lambda _d, _t, _p: True)
    monkeypatch.setattr(kind_mod.loadgenimage, "build", lambda _d, tag, _p: tag)
    monkeypatch.setenv("DOCKER_HOST", "unix:///u.sock")
    runner = FakeRunner()
    created_after: list[int] = []
    real = runner.__call__

    def spy(argv: Any, **kw: Any) -> Any:
        if list(argv[:3]) == ["kind", "create", "cluster"]:
            created_after.append(len(journal.entries))
        return real(argv, **kw)

    api = FakeAPI(
        cluster_objects(
            [
                node("cth-r1-control-plane", taint=True),
                node("cth-r1-worker", {LABEL_NODE: "node-1"}),
            ]
        )
    )
    choice = kinddocker.choose({}, FakeDocker())
    backend = KindBackend(
        KindSettings.from_env({}, choice, project_dir=tmp_path),
        runner=spy,
        api_factory=lambda _kc: api,
        guard=guard,  # type: ignore[arg-type]
        euid=lambda: 0,
    )
    monkeypatch.setattr(shutil, "which", lambda tool, *a, **k: f"/usr/bin/{tool}")
    with backend.realize(plan_run(scenario(cluster={"nodes": 1}, phases=[{"name": "p"}])), "r1"):
        pass
    [entry] = [e for e in journal.entries if e["op"] == kind_mod.KIND_CLUSTER_OP]
    assert entry["name"] == "cth-r1"
    assert entry["docker_host"] == "unix:///u.sock"
    assert entry["kind"] == "/usr/bin/kind"
    assert created_after == [1]  # journaled before `kind create cluster` ran


def test_restore_deletes_a_journaled_cluster_once(tmp_path: Path) -> None:
    from harness.backends.kube import kind as kind_mod

    log = tmp_path / "calls"
    kind = tmp_path / "kind"
    kind.write_text(
        "#!/bin/sh\n"
        f'echo "$DOCKER_HOST $*" >> {log}\n'
        'if [ "$1" = get ]; then [ -e ' + str(tmp_path / "gone") + " ] || echo cth-r1; fi\n"
        'if [ "$1" = delete ]; then : > ' + str(tmp_path / "gone") + "; fi\n"
    )
    kind.chmod(0o755)
    entry = {"op": "kind-cluster", "name": "cth-r1", "kind": str(kind), "docker_host": "unix:///u"}
    assert kind_mod.undo_cluster_entry(entry) == [
        "deleted kind cluster cth-r1 (left by a killed run)"
    ]
    assert kind_mod.undo_cluster_entry(entry) == []  # idempotent: already gone
    assert log.read_text().splitlines() == [
        "unix:///u get clusters",
        "unix:///u delete cluster --name cth-r1",
        "unix:///u get clusters",
    ]
    assert os.environ.get("DOCKER_HOST") != "unix:///u"  # the caller's environment is back
