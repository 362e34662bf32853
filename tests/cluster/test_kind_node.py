"""A kind cluster from the node image built here: it comes up with nothing pulled and every
node Ready. Checked on the package's shared cluster (conftest.py ``kept_kind``: ``up`` made it
from that image on "the user's" Docker, with no registry reachable); its teardown checks that
the host is left as found (no container, link, rule, mount or sysctl change).

Root, the host lock, docker.io, the pinned upstream binaries in the cache
(``conntrack-harness upstream build``; kubectl in ``kubectl-<version>/``).
"""

from __future__ import annotations

import subprocess

import pytest

from harness.backends.kube.names import LOADGEN_IMAGE_GLIBC, LOADGEN_IMAGE_MUSL
from harness.kindbuild import kindimages, kindnode, loadgenimage
from harness.upstream import locate
from tests.cluster.conftest import KIND, KeptKind

pytestmark = [pytest.mark.cluster, *KIND]

# what the harness loads into the nodes, built here too (never pulled): the loadgen images and
# the HTTP server's (tagged by the hash of what it was built from)
HARNESS_REPOS = {
    LOADGEN_IMAGE_GLIBC.split(":")[0],
    LOADGEN_IMAGE_MUSL.split(":")[0],
    loadgenimage.HTTP_SERVER_REPO,
}


def test_cluster_from_local_node_image_pulls_nothing(kept_kind: KeptKind) -> None:
    kubectl = [str(locate("kubectl")), "--kubeconfig", str(kept_kind.kubeconfig)]
    nodes = subprocess.run(
        [*kubectl, "get", "nodes", "--no-headers"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert len(nodes) >= 2, nodes
    assert all(ln.split()[1] == "Ready" for ln in nodes), nodes
    # every image the nodes hold is one built here (no registry was reachable anyway: a pull
    # would show as an event and a failed pod), the harness's own images included
    names = set(kindimages.image_names(kindnode.binaries()[0]).values())
    for node in (ln.split()[0] for ln in nodes):
        held = kept_kind.docker.cli("exec", node, "ctr", "-n", "k8s.io", "images", "list", "-q")
        tags = {t.removeprefix("docker.io/") for t in held.split() if "@sha256:" not in t}
        tags = {t for t in tags if not t.startswith("sha256:")}
        ours = {t for t in tags if t.split(":")[0] in HARNESS_REPOS}
        assert tags - ours <= names, tags - ours - names
    events = subprocess.run(
        [*kubectl, "get", "events", "-A"], capture_output=True, text=True, check=True
    ).stdout
    assert "Pulling" not in events
    assert "ErrImagePull" not in events
