"""kind on the user's own Docker (issue 20): where ``docker info`` answers and kind's node
image for the pinned release is present, ``up`` and ``run --backend kind`` start no dockerd and
build no node image.

The "user's Docker" is this project's private dockerd, started as if it were the user's (its
socket exported as ``DOCKER_HOST``), with the node image built here tagged as
``kindest/node:<pinned release>``: the package's shared cluster (conftest.py ``kept_kind``),
which ``up`` made on it. ``up``'s progress lines must say it took that daemon and that image;
a run on the cluster (the CLI, default ``CTH_KIND_DOCKER=auto``) must find the only dockerd on
the host to be the user's while it runs, add no image to the daemon, and say in its progress
lines and result.json which path it took and why. That the daemon is stopped by PID with the
project's own code (undoing its chains and the FORWARD policy) and the host is as found is
checked by the fixture's teardown.

Root, docker.io, the pinned upstream binaries in the cache. ``CTH_KIND_TESTS=0`` skips it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.backends.kube.names import LOADGEN_IMAGE_GLIBC
from harness.kindbuild import dockerd, kinddocker
from tests.cluster.conftest import KEPT, KIND, KeptKind

pytestmark = [pytest.mark.cluster, pytest.mark.scenario, *KIND]

ROOT = Path(__file__).resolve().parents[2]


def _scenario() -> dict[str, object]:
    """A short phase on the shared cluster's own config (exhaustion.yaml's cluster: the same
    kind cluster, so it is reused, not rebuilt)."""
    cluster = yaml.safe_load((ROOT / "scenarios/exhaustion.yaml").read_text())["cluster"]
    return {
        "name": "kind-system-docker",
        "cluster": cluster,
        "load": {
            "duration_s": 5,
            "warmup": "none",
            "http": {"mode": "pooled", "rate": 20},
            "dns": {"rate": 10, "resolver": "glibc", "names": ["http-server"]},
        },
        "phases": [{"name": "short", "expect": ["dns.lookups > 0"]}],
    }


def _dockerd_processes() -> dict[int, tuple[int, str]]:
    """Every process running the dockerd executable, whoever started it: pid -> (parent
    pid, argv)."""
    out = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if Path(p / "exe").readlink().as_posix() == dockerd.DOCKERD:
                    argv = (p / "cmdline").read_bytes().split(b"\0")
                    ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
                    text = " ".join(a.decode(errors="replace") for a in argv if a)
                    out[int(p.name)] = (ppid, text)
            except (OSError, ValueError, IndexError):
                continue
    return out


def _daemons(procs: dict[int, tuple[int, str]]) -> set[int]:
    """The Docker daemons among them. A daemon re-executes itself for image work (``kind
    load``'s ``docker save``, ``docker cp``) as its own children named ``docker-untar``,
    ``docker-applyLayer``, ...: those are its helpers, not daemons."""
    return {
        pid
        for pid, (ppid, argv) in procs.items()
        if ppid not in procs and Path(argv.split(" ", 1)[0]).name == "dockerd"
    }


def _images(user: dockerd.Dockerd) -> set[str]:
    return set(user.cli("images", "--all", "--quiet", "--no-trunc").split())


def test_up_and_a_run_on_a_docker_that_answers_start_no_dockerd_and_build_no_image(
    tmp_path: Path, kept_kind: KeptKind
) -> None:
    pinned = kinddocker.pinned_node_image()
    user = kept_kind.docker
    # up made the cluster on the user's daemon and its node image: nothing started or built
    up = [ln.removeprefix("conntrack-harness: ") for ln in kept_kind.up_stderr.splitlines()]
    assert any(
        ln.startswith(f"[kind] docker: system (the Docker daemon at {user.host}, Docker ")
        for ln in up
    ), up
    assert (
        f"[kind] node image: {pinned} (kind's node image for the pinned release, present "
        "locally; nothing built)"
    ) in up
    assert not [ln for ln in up if "starting the private dockerd" in ln]
    assert not [ln for ln in up if "node image from the pinned upstream binaries" in ln]
    # a run on it, watched: no dockerd but the user's, no image added to its daemon
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(yaml.safe_dump(_scenario()))
    report = tmp_path / "report"
    images0 = _images(user)
    ours = _daemons(_dockerd_processes())
    assert ours == {user.proc.pid}
    argv = [sys.executable, "-m", "harness.cli", "run", str(scenario)]
    argv += ["--backend", "kind", "--report-dir", str(report), "--wait", "60"]
    seen: dict[int, tuple[int, str]] = {}
    with (tmp_path / "stderr").open("w") as err:
        p = subprocess.Popen(
            argv, env=kept_kind.env, stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path
        )
        deadline = time.monotonic() + 900
        while p.poll() is None and time.monotonic() < deadline:
            seen |= _dockerd_processes()
            time.sleep(0.5)
        if p.poll() is None:
            p.terminate()
            p.wait(120)
    progress = (tmp_path / "stderr").read_text()
    print(progress)
    assert p.returncode == 0, progress[-4000:]
    print(f"dockerd processes seen during the run: {seen}")
    assert _daemons(seen) == ours, seen
    assert _images(user) == images0
    # the progress lines say which path the run took, and why
    lines = progress.splitlines()
    assert f"reusing the kind cluster {KEPT}: kept by `conntrack-harness up`" in progress
    assert f"[kind] docker: system (the Docker daemon at {user.host}, Docker " in progress
    assert not [ln for ln in lines if "starting the private dockerd" in ln]
    assert not [ln for ln in lines if "node image from the pinned upstream binaries" in ln]
    assert (
        f"[kind] loadgen image {LOADGEN_IMAGE_GLIBC} (built or checked): "
        f"{LOADGEN_IMAGE_GLIBC} present ("
    ) in progress
    checked = [ln for ln in lines if "(built or checked): " in ln]
    assert len(checked) == 2, checked  # the loadgen image and the HTTP server's
    assert all(" present (" in ln for ln in checked), checked
    # ... and so does result.json, whose node containers ran the pinned kindest/node image
    result = json.loads((report / "result.json").read_text())
    comps = result["environment"]["components"]
    assert comps["kind-node-image"]["image"] == pinned, comps
    # the node image was up's choice (checked above); the run names the kept cluster it used
    assert "kept by `conntrack-harness up`" in comps["kind-node-image"]["source"], comps
    problems = kinddocker.system_path_problems(comps, pinned)
    assert not [p for p in problems if p.startswith("docker ")], problems
    assert comps["docker"]["source"].startswith("the system Docker daemon: system ("), comps
    assert result["phases"][0]["dns"]["lookups"] > 0
