"""A kind cluster from the node image built here: it comes up with nothing pulled, every node
Ready, and the host is left as found (no container, link, rule, mount or sysctl change).

Root, the kernel lock (``flock /run/cth-dev.lock``), docker.io, the pinned upstream binaries
in the cache (``conntrack-harness upstream build``; kubectl in ``kubectl-<version>/``).
~2 min with the node image already built, ~3 min more to build it.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cthcommon.errors import MissingTool
from harness.backends.kube.kindconfig import kubeadm_patches
from harness.kernel.journal import Journal
from harness.kindbuild import dockerd, kindimages, kindnode
from harness.scenario.loader import load_scenario
from harness.upstream import ComponentMissing, kindparts, locate
from tests.cluster.conftest import KIND

pytestmark = [pytest.mark.cluster, *KIND]

ROOT = Path(__file__).resolve().parents[2]
# counters the kernel moves by itself (fs.quota.syncs counts every sync, e.g. a container's)
VOLATILE = ("random", "ns_last_pid", "inode", "dentry", "file-nr", "entropy", "_state", "stat",
            "quota.syncs")  # fmt: skip


def _sysctls() -> dict[str, str]:
    out = subprocess.run(["sysctl", "-a"], capture_output=True, text=True, check=False).stdout
    pairs = (ln.split(" = ", 1) for ln in out.splitlines() if " = " in ln)
    return {
        k: v
        for k, v in pairs
        if k.split(".")[0] in ("kernel", "fs", "vm") and not any(x in k for x in VOLATILE)
    }


def _host() -> tuple[str, set[str], dict[str, str], int]:
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    rules = "\n".join(ln for ln in rules.splitlines() if not ln.startswith("#"))
    mounts = Path("/proc/self/mountinfo").read_text().count("conntrack-harness/docker")
    return rules, dockerd.host_links(), _sysctls(), mounts


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Journal]:
    monkeypatch.setenv("CONNTRACK_HARNESS_STATE_DIR", str(tmp_path / "state"))
    j = Journal.create("kindnodetest")
    yield j
    j.close()


def test_cluster_from_local_node_image_pulls_nothing(journal: Journal, tmp_path: Path) -> None:
    try:
        kind = kindparts.kind_binary()
        kindnode.binaries()
    except (ComponentMissing, MissingTool) as e:
        pytest.skip(f"upstream parts not built: {e}")
    kubectl = locate("kubectl")
    before = _host()
    cfg, kc = tmp_path / "kind.yaml", tmp_path / "kubeconfig"
    patches = "".join(
        "- |\n" + "".join(f"  {ln}\n" for ln in p.splitlines())
        for p in kubeadm_patches(load_scenario(ROOT / "scenarios/exhaustion.yaml"), "iptables")
    )
    cfg.write_text(
        "kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n"
        "nodes:\n- role: control-plane\n- role: worker\n"
        f"kubeadmConfigPatches:\n{patches}"
    )
    with dockerd.running(journal) as d:
        image = kindnode.build(d)
        create = [str(kind), "create", "cluster", "--name", "cthtest", "--image", image]
        try:
            p = subprocess.run(
                [*create, "--config", str(cfg), "--kubeconfig", str(kc)],
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert p.returncode == 0, p.stderr[-3000:]
            assert "present locally" in p.stderr or "Ensuring node image" in p.stderr
            deadline = time.monotonic() + 240
            nodes = ""
            while time.monotonic() < deadline:
                nodes = subprocess.run(
                    [str(kubectl), "--kubeconfig", str(kc), "get", "nodes", "--no-headers"],
                    capture_output=True,
                    text=True,
                    check=False,
                ).stdout
                if len(nodes.splitlines()) == 2 and all(
                    ln.split()[1] == "Ready" for ln in nodes.splitlines()
                ):
                    break
                time.sleep(2)
            assert all(ln.split()[1] == "Ready" for ln in nodes.splitlines()), nodes
            # every image the nodes hold is one built here (no registry was reachable anyway:
            # a pull would show as an event and a failed pod)
            names = set(kindimages.image_names(kindnode.binaries()[0]).values())
            for node in ("cthtest-control-plane", "cthtest-worker"):
                held = d.cli("exec", node, "ctr", "-n", "k8s.io", "images", "list", "-q").split()
                tags = {t.removeprefix("docker.io/") for t in held if "@sha256:" not in t}
                tags = {t for t in tags if not t.startswith("sha256:")}
                assert tags <= names, tags - names
            events = subprocess.run(
                [str(kubectl), "--kubeconfig", str(kc), "get", "events", "-A"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            assert "Pulling" not in events
            assert "ErrImagePull" not in events
        finally:
            subprocess.run(
                [str(kind), "delete", "cluster", "--name", "cthtest", "--kubeconfig", str(kc)],
                capture_output=True,
                timeout=300,
                check=False,
            )
    after = _host()
    assert after[0] == before[0]  # iptables
    assert after[1] == before[1]  # links
    assert {k: v for k, v in after[2].items() if before[2].get(k) != v} == {}
    assert after[3] == before[3]  # mounts
    assert not dockerd.is_running(dockerd.DockerdPaths.default())
