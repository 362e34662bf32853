"""One scenario, two backends, same verdicts (issue 14): exhaustion.yaml and race.yaml run on
netns and on kind, as a user runs them (the CLI); every phase gets the same verdict, and the
two timeout rates agree: their 95 % intervals overlap (as ``compare`` matches two runs,
``harness.results.diff``), or they are no further apart than two runs on one backend are
(``RUN_TO_RUN_95``).

Why overlap, and not "each rate inside the other's interval": two samples of the same rate
miss that stricter test about one time in six per phase (the difference of two estimates has
sqrt(2) times the spread of one), so with four phases that lose lookups it would fail about
half the runs of two identical backends. Overlapping 95 % intervals are missed about once in
200 per phase by identical backends.

Which interval: the batch-means interval over one-second batches of the phase's DNS timeline
(``harness.steady.batch_means_ci``, through ``harness.results.diff.rate_interval``), not the
Wilson interval in ``timeout_rate_ci``. Lookups made in the same second share the table's state (full or not, the GC's last pass), so
they time out together; Wilson assumes them independent and is too narrow for comparing two
runs. Measured: a CI run on kind had four seconds of the exhaustion baseline where the table
had room (40 %, 58 %, 78 %, 90 % of that second's lookups timed out, against 90-100 % in the
others): 84.8 % [80.9, 87.9] by Wilson against netns's 97.0 % [94.8, 98.3], apart; by
one-second batches 84.8 % [70.0, 99.5] against [93.4, 100], together. A real difference
still fails it: a natural start on kind (36 % where netns measured 98 %, issue 18) or a rate
more than ``RUN_TO_RUN_95`` off at race.yaml's 1,500 lookups a phase.

Why also ``RUN_TO_RUN_95``: a run's interval measures the spread within that run, and runs
differ by more. The race's rate depends on how the two DNS servers' answers interleave, which
varies with each run's scheduling. Measured, race.yaml five times on netns alone: ndots-2
47.3, 48.3, 52.4, 50.5, 49.4 % (standard deviation 2.0 points; runs 1 and 3 had intervals
[43.77, 50.76] and [50.81, 53.99], which do not overlap); fqdn 48.9-52.7 % (1.5 points); the
baseline 70.6-71.7 % (0.4 points). Two runs of one backend then differ by up to
1.96 * sqrt(2) * 2.0 = 5.5 points 95 % of the time. A CI run had netns 51.8 % [50.0, 53.6]
against kind 47.4 % [45.0, 49.8] on one of those phases: apart by the intervals, within the
spread of netns alone.

Both run the scenarios as shipped: every phase with expectations is measured in its load's
steady state on both (the exhaustion baseline after the same aged warm-up, ``aged-fill`` in
``steady_state.warmup``: kind's from its client pods' and node containers' namespaces). Where
the two differ, this says why:

- **NodeLocal.** node-cache's image cannot be built here (k8s.io/dns: 403 from the Go module
  proxy); on both backends its labelled stand-in runs node-cache's Corefile on the pinned
  CoreDNS, with node-cache's interface and NOTRACK rules added by the harness.
- **Sampling.** Both read each node's counters in its namespace 10 times a second (kind's
  through ``/proc/<node init PID>/ns/net``); the pods' load starts through ``kubectl exec``
  on kind, so the gap from the warm-up to the load differs (reported as ``gap_to_load_s``).

The netns side is the session's one run of each file as shipped (conftest.py
``shipped_result``, shared with the files' own tests). The kind side runs both files on the
package's one kind cluster (tests/cluster/conftest.py ``kept_kind``), made by
``conntrack-harness up`` and reused by every run (the same cluster config: a kept cluster says
what it was made for, and one made for another is rebuilt), then deleted by
``conntrack-harness down``, on this project's dockerd started as "the user's" Docker; ``up``
while it is up exits 2, ``down`` with nothing up exits 0.

Root, the host lock, docker.io; the kind node image and parts are built on first use (~8 min
cold, bench/kind.json); the module takes ~6-8 min warm. ``CTH_KIND_TESTS=0`` skips it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.kindbuild import kinddocker
from harness.results.diff import RUN_TO_RUN_95, PhaseDiff, diff_runs
from harness.upstream import release
from tests.cluster.conftest import KEPT, KIND, KeptKind, outcomes, run_on
from tests.pcapcheck import LOAD, PHASES, TIMEOUT_1S, check_race_pcap, no_process_mentions
from tests.resultshape import unexplained_differences

pytestmark = [pytest.mark.cluster, pytest.mark.scenario, *KIND]

ROOT = Path(__file__).resolve().parents[2]
CT_MAX = Path("/proc/sys/net/netfilter/nf_conntrack_max")


PATHS = ("scenarios/exhaustion.yaml", "scenarios/race.yaml")


def _run(scenario: Path, report: Path, env: dict[str, str], *flags: str) -> dict[str, Any]:
    """``conntrack-harness run --backend kind`` on the kept cluster, as a user runs it."""
    result, stderr = run_on("kind", scenario, report, env, *flags)
    # the cluster `up` keeps, reused: nothing created, nothing deleted
    assert f"reusing the kind cluster {KEPT}: kept by `conntrack-harness up`" in stderr
    assert "kind create cluster" not in stderr
    return result


@pytest.fixture(scope="module")
def netns_results(shipped_result: Callable[[str], dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Both files on netns, as shipped (the session's one run of each, conftest.py; the
    cluster fixture makes them before the kind cluster exists)."""
    return {path: shipped_result(path) for path in PATHS}


def _agree(p: PhaseDiff) -> bool:
    """netns (A) and kind (B) measured the same rate: their intervals overlap, or they are no
    further apart than two runs of one backend."""
    a, b = p.a.timeout_rate, p.b.timeout_rate
    assert a is not None, p
    assert b is not None, p
    return bool(p.ci_overlap) or abs(a - b) <= RUN_TO_RUN_95


def _row(p: PhaseDiff) -> str:
    return (
        f"{p.name}: netns {p.a.timeout_rate:.3f} {p.a.ci} {p.a.verdict} | "
        f"kind {p.b.timeout_rate:.3f} {p.b.ci} {p.b.verdict}"
    )


@pytest.mark.parametrize("path", PATHS)
def test_same_verdicts_on_netns_and_kind(
    path: str,
    netns_results: dict[str, dict[str, Any]],
    kind_shipped: Callable[[str], dict[str, Any]],
    host_unchanged: object,
) -> None:
    max0 = CT_MAX.read_text()
    netns = netns_results[path]
    kind = kind_shipped(path)  # as shipped: no `warmup: none`
    assert CT_MAX.read_text() == max0  # the host's table size is back
    # kind's result says what it ran on, and is assessed like netns's
    comps = kind["environment"].get("components", {})
    rel = release()  # the node image is built from the pinned parts: their versions, read live
    assert comps["kube-proxy"]["version"] == rel.kubernetes, comps
    assert comps["kube-proxy"]["mode"] == netns["environment"]["components"]["kube-proxy"]["mode"]
    assert comps["coredns"]["version"] == rel.coredns, comps
    assert comps["kind-node-image"]["image"] == kinddocker.pinned_node_image(), comps
    assert [n["name"] for n in netns["phases"]] == [k["name"] for k in kind["phases"]]
    phases = diff_runs(netns, kind).phases  # matched as `compare` matches two runs
    rows = [_row(p) for p in phases]
    print("\n".join(rows))
    for n, k in zip(netns["phases"], kind["phases"], strict=True):
        if not n.get("expectations"):
            continue
        # a gate is judged in steady state on both, reached the same way (the aged warm-up
        # where the load's steady state needs it, labelled; else a natural start)
        for r in (n, k):
            assert r["steady_state"]["reached"] is True, (r["name"], r["steady_state"]["reason"])
        nw, kw = n["steady_state"]["warmup"], k["steady_state"]["warmup"]
        assert kw["method"] == nw["method"], (n["name"], nw, kw)
        if kw["method"] == "aged-fill":
            assert "aged fill" in kw["label"]
            assert all(f["opened"] >= 0.9 * f["wanted"] for f in kw["flows"]), kw["flows"]
    if path.endswith("exhaustion.yaml"):  # its baseline's steady state needs the warm-up
        assert kind["phases"][0]["steady_state"]["warmup"]["method"] == "aged-fill"
    for p in phases:
        assert p.a.verdict == p.b.verdict, rows
        assert _agree(p), rows
    # the same comparisons come out the same way ("fixed" needs steady state on both)
    assert outcomes(netns) == outcomes(kind)
    # the same result.json, key for key, but what kind's `unavailable` says it cannot read;
    # kube-proxy's figures included (read in the node containers' namespaces)
    assert unexplained_differences(netns, kind) == {}
    assert all(p["kube_proxy"]["nodes"].keys() == {"node-1", "node-2"} for p in kind["phases"])


def test_pcap_on_kind_INJECTED(tmp_path: Path, kept_kind: KeptKind, host_unchanged: object) -> None:
    """``run --pcap`` on kind, on the same kept cluster (race.yaml's cluster, each lookup's
    lost AAAA costing 1 s): tcpdump runs in the client pods' namespaces, found on this host
    through their sandbox PIDs, and the bundle keeps exactly the same-port pairs whose AAAA
    the INJECTED rule dropped, as on netns (tests/pcapcheck.py). The fault's window counters
    are read from the node containers' fault table as netns reads its nodes'."""
    race = yaml.safe_load((ROOT / "scenarios/race.yaml").read_text())
    dns_config = race["cluster"]["dns_config"]
    options = [*dns_config["options"], *TIMEOUT_1S["options"]]
    scenario = {
        "name": "race-pcap",
        "cluster": {**race["cluster"], "dns_config": {**dns_config, "options": options}},
        "load": LOAD,
        "phases": PHASES,
    }
    f = tmp_path / "race-pcap.yaml"
    f.write_text(yaml.safe_dump(scenario))
    result = _run(f, tmp_path / "kind", kept_kind.env, "--pcap")
    by = check_race_pcap(result, tmp_path / "kind", tmp_path)
    assert by["baseline"]["capture"]["where"] == "client pods' eth0"
    no_process_mentions("cth-pcap-")  # the run's tcpdumps are stopped
