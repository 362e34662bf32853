"""The GitHub workflows pass actionlint, and the kind workflow runs what the issue asks."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kube_fakes import FakeRunner

from cthcommon.errors import BadInput
from harness.backends.kube import kind as kind_mod
from harness.backends.kube.kind import KindBackend, KindSettings
from harness.kindbuild import kinddocker

ROOT = Path(__file__).resolve().parents[4]
WORKFLOWS = [ROOT / ".github/workflows/ci.yml", ROOT / ".github/workflows/kind.yml"]


def actionlint() -> str:
    """The actionlint the dev extra installs into this venv (or one on PATH)."""
    here = Path(sys.executable).parent / "actionlint"
    found = str(here) if here.exists() else shutil.which("actionlint")
    if found is None:
        pytest.fail("actionlint is missing: install the dev extra (pip install -e '.[dev]')")
    return found


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_passes(workflow: Path) -> None:
    p = subprocess.run(
        [actionlint(), "-no-color", str(workflow)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert p.returncode == 0, p.stdout + p.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    wf = tmp_path / ".github/workflows/bad.yml"
    wf.parent.mkdir(parents=True)
    wf.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - run: echo ${{ matrix.nope }}\n"
    )
    p = subprocess.run(
        [actionlint(), "-no-color", str(wf)],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert p.returncode != 0
    assert "matrix" in p.stdout


def load(name: str) -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / ".github/workflows" / name).read_text())


def test_kind_workflow_matrix_and_commands() -> None:
    wf = load("kind.yml")
    job = wf["jobs"]["scenario"]
    matrix = job["strategy"]["matrix"]
    images = [i["node_image"] for i in matrix["include"]]
    assert len(images) >= 2
    assert all(i.startswith("kindest/node:v1.") and "@sha256:" in i for i in images)
    assert sorted(i["k8s"] for i in matrix["include"]) == sorted(matrix["k8s"])
    assert set(matrix["scenario"]) == {"exhaustion", "race"}
    steps = job["steps"]
    i, run_step = next(
        (i, s) for i, s in enumerate(steps) if "conntrack-harness run" in s.get("run", "")
    )
    run = run_step["run"]
    assert "--backend kind" in run
    assert "--report-dir" in run
    uploads = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact")]
    assert uploads
    assert uploads[0]["if"] == "always()"
    # the runs take the runner's Docker and the matrix's pinned kindest/node image: the mode
    # is auto or system (never the private dockerd), and sudo passes it and the image through
    mode = {**wf.get("env", {}), **job.get("env", {}), **run_step.get("env", {})}.get(
        "CTH_KIND_DOCKER", "auto"
    )
    assert mode in ("auto", "system")
    assert run_step["env"]["CTH_KIND_NODE_IMAGE"] == "${{ matrix.node_image }}"
    sudo = re.sub(r"\\\n\s*", " ", run)
    assert 'CTH_KIND_DOCKER="$CTH_KIND_DOCKER"' in sudo.split("conntrack-harness run")[0]
    assert 'CTH_KIND_NODE_IMAGE="$CTH_KIND_NODE_IMAGE"' in sudo.split("conntrack-harness run")[0]
    # ... and a step after the run checks, in its result.json, that it did
    check = next(s for s in steps[i + 1 :] if "harness.kindbuild.kinddocker" in s.get("run", ""))
    assert check["env"]["CTH_KIND_NODE_IMAGE"] == "${{ matrix.node_image }}"
    assert check["env"]["REPORT_DIR"] == run_step["env"]["REPORT_DIR"]
    assert '"$REPORT_DIR/result.json" "$CTH_KIND_NODE_IMAGE"' in check["run"]
    assert "if" not in check  # it runs only after a run that succeeded, and fails the job


def test_ci_workflow_runs_lint_and_test_with_sudo() -> None:
    steps = load("ci.yml")["jobs"]["lint-and-test"]["steps"]
    runs = " ".join(s.get("run", "") for s in steps)
    assert "sudo" in runs
    assert "make lint" in runs
    assert "make test" in runs


def test_kind_settings_from_the_workflow_env() -> None:
    s = KindSettings.from_env({"CTH_KIND_NODE_IMAGE": "kindest/node:v1.36.4", "CTH_KIND_KEEP": "1"})
    assert s.config.node_image == "kindest/node:v1.36.4"
    assert s.keep_cluster
    assert KindSettings.from_env({}).config.node_image is None
    with pytest.raises(BadInput):
        KindSettings.from_env({"CTH_KIND_KEEP": "maybe"})


def _run_flags(text: str) -> set[str]:
    """The --flags of every `conntrack-harness run` command line in a text (continuations
    joined)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    flags: set[str] = set()
    for line in joined.splitlines():
        if "conntrack-harness run" in line:
            flags |= set(
                re.findall(r"(?<![\w-])(--[a-z][a-z-]+)", line.split("conntrack-harness run", 1)[1])
            )
    return flags


def test_workflows_and_docs_use_only_real_run_flags() -> None:
    from harness.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    run_parser = sub.choices["run"]  # type: ignore[attr-defined]
    real = {s for a in run_parser._actions for s in a.option_strings}
    texts = [p.read_text() for p in sorted((ROOT / ".github" / "workflows").glob("*.yml"))]
    texts.append((ROOT / "docs" / "backends.md").read_text())
    used = set().union(*(_run_flags(t) for t in texts))
    assert {"--backend", "--kubeconfig", "--loadgen-image", "--allow-disruptive"} <= used
    assert used - real == set()


def _kind_components(choice: kinddocker.Choice) -> dict[str, Any]:
    """environment.components as a kind run on ``choice`` records them (the fake docker
    reports the node containers running the chosen image)."""
    image = choice.node_image or "conntrack-harness/kind-node:v1.35.4-0123456789ab"
    runner = FakeRunner(
        {
            ("docker", "ps"): f"cth-r1-control-plane {image}\ncth-r1-worker {image}\n",
            ("docker", "info"): "27.5.1\n",
            ("kind", "version"): "kind v0.33.0 go1.26.8 linux/amd64\n",
        }
    )
    backend = KindBackend(KindSettings.from_env({}, choice), runner=runner)
    backend._cluster = "cth-r1"
    backend._node_image_source = (
        kind_mod.NODE_IMAGE_SYSTEM if choice.system else kind_mod.NODE_IMAGE_BUILT
    )
    return dict(backend.components())


def test_the_workflows_check_tells_the_system_path_from_the_private_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = next(
        i["node_image"]
        for i in load("kind.yml")["jobs"]["scenario"]["strategy"]["matrix"]["include"]
    )
    system = kinddocker.Choice(
        True,
        "CTH_KIND_DOCKER=auto: the Docker daemon at unix:///var/run/docker.sock answers",
        "system (the Docker daemon at unix:///var/run/docker.sock, Docker 27.5.1; "
        "CTH_KIND_DOCKER=auto)",
        image,
        f"{image} (named by CTH_KIND_NODE_IMAGE, pulled now; nothing built)",
    )
    private = kinddocker.private("no Docker daemon answers at unix:///var/run/docker.sock", None)
    for choice, want in ((system, 0), (private, 1)):
        result = tmp_path / f"{choice.system}.json"
        result.write_text(json.dumps({"environment": {"components": _kind_components(choice)}}))
        assert kinddocker.main([str(result), image]) == want, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "not the system path: docker was not the system daemon: this project's private" in out
    assert "not the system path: the node image was not " in out
    # the right daemon with another image is not what the workflow pinned either
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"environment": {"components": _kind_components(system)}}))
    assert kinddocker.main([str(other), "kindest/node:v1.99.0"]) == 1
