"""kind on the user's own Docker (issue 20): where ``docker info`` answers and kind's node
image for the pinned release is present, ``run --backend kind`` starts no dockerd and builds
no image.

The "user's Docker" is this project's private dockerd, started here as if it were the
user's (its socket exported as ``DOCKER_HOST``), with the node image built here tagged as
``kindest/node:<pinned release>`` and the loadgen and HTTP server images it already had from
earlier runs. The run (the CLI, default ``CTH_KIND_DOCKER=auto``) must take that daemon and
that image: the only dockerd on the host while it runs is the test's, no image appears in the
daemon, and the progress lines and result.json say which path it took and why. The test then
stops the dockerd it started, by PID, with the project's own code (which undoes its chains
and the FORWARD policy), and checks the host is as found.

The test holds the host lock for the whole time (nothing else may start a kind cluster or a
dockerd meanwhile); the run under test takes a lock file of its own. Root, docker.io, the
pinned upstream binaries in the cache. ~3-4 min with the images already built (~8 min more
to build the node image cold). ``CTH_KIND_TESTS=0`` skips it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.backends.kube.names import LOADGEN_IMAGE_GLIBC
from harness.kernel.journal import HostLock, Journal
from harness.kindbuild import dockerd, kinddocker, kindnode, loadgenimage
from tests.cluster.conftest import KIND

pytestmark = [pytest.mark.cluster, pytest.mark.scenario, *KIND]

ROOT = Path(__file__).resolve().parents[2]
CT_MAX = Path("/proc/sys/net/netfilter/nf_conntrack_max")
SCENARIO = """\
apiVersion: conntrack-harness/v1
kind: Scenario
name: kind-system-docker
cluster: {nodes: 1, client_pods: 1}
load:
  duration_s: 5
  warmup: none
  http: {mode: pooled, rate: 20}
  dns: {rate: 10, resolver: glibc, names: [http-server]}
phases:
  - name: short
    expect: [dns.lookups > 0]
"""


def _dockerd_processes() -> dict[int, tuple[int, str]]:
    """Every process running the dockerd executable, whoever started it: pid -> (parent
    pid, argv)."""
    out = {}
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if os.readlink(p / "exe") == dockerd.DOCKERD:
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


def _dockerds() -> set[int]:
    return _daemons(_dockerd_processes())


def _filter_rules() -> str:
    out = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    return "\n".join(ln for ln in out.splitlines() if not ln.startswith("#"))


def _forward_policy() -> str:
    out = subprocess.run(
        ["iptables", "-S", "FORWARD"], capture_output=True, text=True, check=True
    ).stdout
    return out.splitlines()[0] if out else ""


def _images(user: dockerd.Dockerd) -> set[str]:
    return set(user.cli("images", "--all", "--quiet", "--no-trunc").split())


def test_a_kind_run_on_a_docker_that_answers_starts_no_dockerd_and_builds_no_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(SCENARIO)
    report = tmp_path / "report"
    pinned = kinddocker.pinned_node_image()
    monkeypatch.setenv("CONNTRACK_HARNESS_STATE_DIR", str(tmp_path / "test-state"))
    with HostLock(wait_s=3600):
        rules0, policy0, links0 = _filter_rules(), _forward_policy(), dockerd.host_links()
        sysctls0, max0 = dockerd.watched_sysctls(), CT_MAX.read_text()
        assert _dockerds() == set(), "a dockerd already runs: this test needs a host without"
        journal = Journal.create(os.urandom(3).hex())
        try:
            with dockerd.running(journal) as user:  # "the user's Docker"
                # what the user's daemon has: kind's node image for the pinned release (the
                # one built here, under kind's name) and the loadgen and HTTP server images
                node = kindnode.build(user)
                user.cli("tag", node, pinned)
                loadgenimage.build(user, LOADGEN_IMAGE_GLIBC, ROOT)
                loadgenimage.build_http_server(user)
                images0 = _images(user)
                ours = _dockerds()
                assert ours == {user.proc.pid}
                env = {
                    k: v
                    for k, v in os.environ.items()
                    if k not in (kinddocker.ENV, kinddocker.NODE_IMAGE_ENV)
                }
                env |= {
                    "DOCKER_HOST": user.host,  # the user's daemon, as the user would export it
                    "CONNTRACK_HARNESS_LOCK": str(tmp_path / "run.lock"),
                    "CONNTRACK_HARNESS_STATE_DIR": str(tmp_path / "run-state"),
                }
                argv = [sys.executable, "-m", "harness.cli", "run", str(scenario)]
                argv += ["--backend", "kind", "--report-dir", str(report), "--wait", "60"]
                seen: dict[int, tuple[int, str]] = {}
                with (tmp_path / "stderr").open("w") as err:
                    p = subprocess.Popen(
                        argv, env=env, stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path
                    )
                    deadline = time.monotonic() + 1500
                    while p.poll() is None and time.monotonic() < deadline:
                        seen |= _dockerd_processes()
                        time.sleep(0.5)
                    if p.poll() is None:
                        p.terminate()
                        p.wait(120)
                progress = (tmp_path / "stderr").read_text()
                print(progress)
                assert p.returncode == 0, progress[-4000:]
                # no dockerd but the user's while the run ran (its re-executed image helpers
                # aside); no image built into its daemon
                print(f"dockerd processes seen during the run: {seen}")
                assert _daemons(seen) == ours, seen
                assert _images(user) == images0
                user.cli("rmi", pinned)  # the tag this test added (the image stays)
        finally:
            journal.close()
        # the user's dockerd is stopped (by PID, by the project's code): the host is as found
        assert _dockerds() == set()
        assert not dockerd.is_running(dockerd.DockerdPaths.default())
        assert _filter_rules() == rules0
        assert _forward_policy() == policy0
        assert dockerd.host_links() == links0
        assert dockerd.watched_sysctls() == sysctls0
        assert CT_MAX.read_text() == max0
    # the progress lines say which path the run took, and why
    lines = progress.splitlines()
    assert f"[kind] docker: system (the Docker daemon at {user.host}, Docker " in "\n".join(lines)
    assert (
        f"[kind] node image: {pinned} (kind's node image for the pinned release, present "
        "locally; nothing built)"
    ) in lines
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
    assert kinddocker.system_path_problems(comps, pinned) == [], comps
    assert comps["docker"]["source"].startswith("the system Docker daemon: system ("), comps
    assert result["phases"][0]["dns"]["lookups"] > 0
