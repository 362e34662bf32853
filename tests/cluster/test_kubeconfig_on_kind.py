"""The kubeconfig backend proven on a real cluster (issue 18 items 3 and 8): the package's kept
kind cluster, driven as an existing cluster through its kubeconfig alone.

- With ``--allow-disruptive``, race.yaml gives the same verdicts and the same comparisons as
  ``--backend kind`` on the same cluster (the package's one kind run of it). The node probe is
  privileged then: the INJECTED fault's counters, the tables' listings and the rules are read
  through it, as on kind.
- Without it, a scenario that needs nothing disruptive runs, changes nothing on the nodes or
  in the cluster beyond its own namespace, and says per feature what it could not measure.
- A cluster that refuses the privileged DaemonSet (an admission policy) is a backend failure,
  exit 3, with the API's message; nothing is left behind.
- An image the nodes cannot get fails the run in seconds, naming it and the flag to fix it.

Nothing is pulled: the images the run names are the ones ``up`` put on the nodes (the loadgen
and HTTP server images built here; the pinned CoreDNS of the node image as node-cache's
labelled stand-in)."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.backends.kube.names import LOADGEN_IMAGE_GLIBC
from harness.kindbuild import kindimages, loadgenimage
from harness.upstream import locate, release
from tests.cluster.conftest import KEPT, KIND, KeptKind, outcomes, run_on
from tests.resultshape import unexplained_differences

pytestmark = [pytest.mark.cluster, pytest.mark.scenario, *KIND]

ROOT = Path(__file__).resolve().parents[2]
RACE = "scenarios/race.yaml"

# a scenario an existing cluster runs without --allow-disruptive: client pods, DNS and the
# resolver options in them, nothing on the nodes or in kube-system
READ_ONLY = {
    "name": "kubeconfig-read-only",
    "cluster": {"nodes": 2, "client_pods": 2, "coredns": {"replicas": 2}},
    "load": {"duration_s": 4, "dns": {"rate": 100, "resolver": "glibc", "names": ["http-server"]}},
    "phases": [
        {"name": "ndots-5", "expect": ["dns.timeout_rate <= 0.01"]},
        {
            "name": "ndots-1",
            "remediations": [
                {"kind": "resolver-option", "options": [{"name": "ndots", "value": "1"}]}
            ],
            "expect": ["dns.timeout_rate <= 0.01"],
        },
    ],
}

# an admission policy that refuses privileged DaemonSets, as a locked-down cluster's would
REFUSE_PRIVILEGED = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: cth-test-no-privileged}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
      - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [daemonsets]}
  validations:
    - expression: >-
        !object.spec.template.spec.containers.exists(c, has(c.securityContext) &&
        has(c.securityContext.privileged) && c.securityContext.privileged)
      message: privileged DaemonSets are not allowed on this cluster (test policy)
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: cth-test-no-privileged}
spec: {policyName: cth-test-no-privileged, validationActions: [Deny]}
"""


SYSCTLS = 'for f in /proc/sys/net/netfilter/*; do echo "$f $(cat "$f")"; done'


def _flags(kept: KeptKind, *more: str, http_server: str | None = None) -> list[str]:
    """The kubeconfig and the images the nodes already have (nothing to pull)."""
    repo = LOADGEN_IMAGE_GLIBC.rsplit(":", 1)[0]
    return [
        "--kubeconfig", str(kept.kubeconfig),
        "--loadgen-image", repo,
        "--image", f"http-server={http_server or loadgenimage.http_server_tag()}",
        "--image", f"node-cache-stand-in={kindimages.coredns_image(release().coredns)}",
        *more,
    ]  # fmt: skip


def _kubectl(kept: KeptKind, *args: str, stdin: str | None = None) -> str:
    argv = [str(locate("kubectl")), "--kubeconfig", str(kept.kubeconfig), *args]
    done = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, check=True, env=kept.env, timeout=120
    )
    return done.stdout


def _workers(kept: KeptKind) -> list[str]:
    names = kept.docker.cli("ps", "--format", "{{.Names}}").split()
    return sorted(n for n in names if n.startswith(f"{KEPT}-worker"))


def _cluster_state(kept: KeptKind) -> dict[str, Any]:
    """What a run could change beyond its namespace: each node's conntrack sysctls (not the
    count) and nft tables; kube-system's CoreDNS, DaemonSets and ConfigMaps; the namespaces."""
    nodes = {}
    for node in _workers(kept):
        sysctls = kept.docker.cli("exec", node, "sh", "-c", SYSCTLS)
        nodes[node] = {
            "sysctls": sorted(ln for ln in sysctls.splitlines() if "conntrack_count" not in ln),
            "nft tables": kept.docker.cli("exec", node, "nft", "list", "tables"),
        }
    system = json.loads(_kubectl(kept, "-n", "kube-system", "get", "ds,cm,deploy", "-o", "json"))
    objects = {
        f"{o['kind']}/{o['metadata']['name']}": (
            o.get("spec", {}).get("replicas"),
            o.get("spec", {}).get("template", {}).get("spec", {}).get("containers"),
            o.get("data"),
        )
        for o in system["items"]
        if o["metadata"]["name"] != "kube-root-ca.crt"
    }
    namespaces = sorted(_kubectl(kept, "get", "ns", "-o", "name").split())
    return {"nodes": nodes, "kube-system": objects, "namespaces": namespaces}


def _bundle_nodes(report: Path) -> dict[str, set[str]]:
    """node -> the files the bug bundle keeps of it."""
    out: dict[str, set[str]] = {}
    with tarfile.open(report / "bundle.tar.gz") as tar:
        for name in tar.getnames():
            parts = name.split("/")
            if len(parts) == 4 and parts[1] == "nodes":
                out.setdefault(parts[2], set()).add(parts[3])
    return out


def _runs_gone(kept: KeptKind) -> dict[str, Any]:
    """The cluster's state once no run's namespace is left. kind deletes its run's namespace
    without waiting for it (nothing in it touches a node by then): measured here, the
    namespace controller takes about a minute after the run to finish it."""
    deadline = time.monotonic() + 180
    while True:
        state = _cluster_state(kept)
        if not any(n.startswith("namespace/cth-") for n in state["namespaces"]):
            return state
        assert time.monotonic() < deadline, state["namespaces"]
        time.sleep(2)


def _forgotten(notes: list[str]) -> dict[str, int]:
    """node -> the entries it deleted of the run's earlier flows, from a phase's note."""
    (said,) = [n for n in notes if "deleted the run's own earlier flows" in n]
    counts = said.split("(", 1)[1].split(" entries", 1)[0]
    return {node: int(n) for node, n in (part.split(" ") for part in counts.split(", "))}


@pytest.fixture
def as_found(kept_kind: KeptKind) -> Iterator[dict[str, Any]]:
    """The cluster's state before the test (the earlier runs' namespaces gone); after it, the
    same: the nodes' sysctls and nft tables, kube-system's objects, the namespaces."""
    before = _runs_gone(kept_kind)
    yield before
    assert _runs_gone(kept_kind) == before


def test_kubeconfig_gives_kinds_verdicts_on_the_same_cluster_INJECTED(
    tmp_path: Path,
    kept_kind: KeptKind,
    kind_shipped: Callable[[str], dict[str, Any]],
    as_found: dict[str, Any],
    host_unchanged: object,
) -> None:
    kind = kind_shipped(RACE)
    report = tmp_path / "kubeconfig"
    flags = _flags(kept_kind, "--allow-disruptive")
    result, stderr = run_on("kubeconfig", ROOT / RACE, report, kept_kind.env, *flags)
    rows = [
        f"{k['name']}: kind {k['dns']['timeout_rate']:.3f} {k['verdict']} | kubeconfig "
        f"{c['dns']['timeout_rate']:.3f} {c['verdict']}"
        for k, c in zip(kind["phases"], result["phases"], strict=True)
    ]
    print("\n".join(rows))
    assert [p["verdict"] for p in result["phases"]] == [p["verdict"] for p in kind["phases"]], rows
    assert result["verdict"] == kind["verdict"]
    assert outcomes(result) == outcomes(kind)
    # the same result.json as kind's, but what its `unavailable` names (kube-proxy: not this
    # host's process on an existing cluster)
    assert unexplained_differences(kind, result) == {}
    by = {p["name"]: p for p in result["phases"]}
    for p in result["phases"]:
        assert p["steady_state"]["reached"] is True, p["steady_state"]["reason"]
        # the privileged probe reads what kind reads: the fault's counters, the tables
        assert "fault_hits" not in p["unavailable"], p["unavailable"]
        assert "conntrack_states" not in p["unavailable"], p["unavailable"]
        assert "INJECTED" in json.dumps(p["faults"]).upper()
    base = by["baseline"]
    # every lookup that lost its AAAA was a hit of the fault, in a window the counters saw open
    assert base["fault"]["hits"] > 0
    assert base["fault"]["window_open"] >= base["fault"]["hits"]
    assert by["single-request-reopen"]["fault"]["hits"] == 0
    assert by["nodelocal"]["fault"]["hits"] == 0
    # the stand-in for node-cache is labelled as one, with where it came from
    nc = result["environment"]["components"]["node-cache"]
    assert nc["source"].startswith("stand-in: ")
    assert "--image node-cache-stand-in" in nc["source"]
    # the bundle has each node's rules, read through the privileged probe
    files = _bundle_nodes(report)
    assert sorted(files) == _workers(kept_kind)
    assert all({"iptables-save.txt", "nft-ruleset.txt"} <= f for f in files.values()), files
    assert "node probe pods Ready: done" in stderr
    # before each phase the nodes deleted the run's own earlier flows, and said how many: the
    # phases after the first found the last ones' lookups still in the tables
    forgot = [_forgotten(p["notes"]) for p in result["phases"]]
    assert all(set(f) == set(_workers(kept_kind)) for f in forgot), forgot
    assert all(sum(f.values()) > 0 for f in forgot[1:]), forgot


def test_kubeconfig_without_allow_disruptive_changes_nothing_and_says_what_it_missed(
    tmp_path: Path, kept_kind: KeptKind, as_found: dict[str, Any], host_unchanged: object
) -> None:
    scenario = tmp_path / "read-only.yaml"
    scenario.write_text(yaml.safe_dump(READ_ONLY))
    report = tmp_path / "kubeconfig"
    result, _ = run_on("kubeconfig", scenario, report, kept_kind.env, *_flags(kept_kind))
    assert result["verdict"] == "pass"
    for p in result["phases"]:
        assert p["dns"]["lookups"] > 0
        missed = p["unavailable"]
        assert {"conntrack_states", "node_rules"} <= set(missed), missed
        assert all("--allow-disruptive" in missed[k] for k in ("conntrack_states", "node_rules"))
        # nothing was deleted from the nodes' tables, and the phase says so
        assert any("were not deleted from the nodes' tables" in n for n in p["notes"])
    # the unprivileged probe read the counters only
    files = _bundle_nodes(report)
    assert files
    assert all(f == {"nf_conntrack-stat.txt"} for f in files.values()), files


def test_a_cluster_that_refuses_the_daemonset_is_a_backend_failure(
    tmp_path: Path, kept_kind: KeptKind, as_found: dict[str, Any], host_unchanged: object
) -> None:
    policy = "validatingadmissionpolicy,validatingadmissionpolicybinding"
    _kubectl(kept_kind, "apply", "-f", "-", stdin=REFUSE_PRIVILEGED)
    try:
        time.sleep(2)  # the policy reaches the API server's admission
        done = _cli_run(tmp_path, kept_kind, ROOT / RACE, "--allow-disruptive")
    finally:
        _kubectl(kept_kind, "delete", policy, "cth-test-no-privileged")
    assert done.returncode == 3, done.stderr[-2000:]
    assert "privileged DaemonSets are not allowed on this cluster (test policy)" in done.stderr
    assert "denied request" in done.stderr


def test_an_image_the_nodes_cannot_get_fails_the_run_early(
    tmp_path: Path, kept_kind: KeptKind, as_found: dict[str, Any], host_unchanged: object
) -> None:
    scenario = tmp_path / "read-only.yaml"
    scenario.write_text(yaml.safe_dump(READ_ONLY))
    bad = "Not-A-Valid:Reference"  # refused by the kubelet at once: nothing is pulled
    done = _cli_run(tmp_path, kept_kind, scenario, http_server=bad)
    assert done.returncode == 3, done.stderr[-2000:]
    assert f"cannot get its image {bad}: InvalidImageName" in done.stderr
    assert "--image ROLE=REF" in done.stderr
    # the wait gave up on the image, not at its 300 s timeout
    assert "the HTTP server cannot become ready" in done.stderr
    assert "timed out after" not in done.stderr


def _cli_run(
    tmp_path: Path, kept: KeptKind, scenario: Path, *more: str, http_server: str | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "harness.cli", "run", str(scenario), "--backend", "kubeconfig"]
    argv += ["--report-dir", str(tmp_path / "out"), "--wait", "60"]
    argv += _flags(kept, *more, http_server=http_server)
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=900, check=False, cwd=tmp_path, env=kept.env
    )
