"""Every client pod of a kind run got the resolv.conf its phase plans: the nameserver (kube-dns,
or NodeLocal's address), the search list in the run's own namespace and the resolver options
of the phase's remediations (single-request-reopen, single-request, ndots:2, ...).

Checked on the package's one kind run of race.yaml, on the kept cluster (conftest.py
``kind_runs``): what each pod held during its phase is in the run's evidence
(``evidence/phases/<phase>/pods/<pod>/resolv.conf``, read from the pod by ``kubectl exec``
while the phase ran), against what :func:`harness.backends.kube.dnsconfig.pod_dns` makes of
the phase's plan with the cluster's kube-dns ClusterIP, read from the cluster here.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cthcommon.resolvconf import ResolvConf
from harness.backends.kube.dnsconfig import NamespaceMap, pod_dns
from harness.backends.kube.names import run_namespace
from harness.plan.phase import plan_run
from harness.scenario.loader import load_scenario
from harness.upstream import locate
from tests.cluster.conftest import KIND, KeptKind

pytestmark = [pytest.mark.cluster, *KIND]

ROOT = Path(__file__).resolve().parents[2]
RACE = "scenarios/race.yaml"


def test_client_pods_get_the_phase_resolv_conf(
    kept_kind: KeptKind, kind_runs: Callable[[str], tuple[dict[str, Any], Path]]
) -> None:
    result, report = kind_runs(RACE)
    kubectl = [str(locate("kubectl")), "--kubeconfig", str(kept_kind.kubeconfig)]
    dns_ip = subprocess.run(
        [*kubectl, "get", "service", "kube-dns", "-n", "kube-system",
         "-o", "jsonpath={.spec.clusterIP}"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert dns_ip, "kube-dns has no ClusterIP"
    run = plan_run(load_scenario(ROOT / RACE))
    nsmap = NamespaceMap(
        run.cluster.namespace, run_namespace(result["run_id"]), run.cluster.cluster_domain
    )
    seen: dict[str, set[str]] = {}
    for phase in run.phases:
        want = pod_dns(phase.pod_dns, nsmap, dns_ip).resolv_conf()
        files = sorted((report / "evidence" / "phases" / phase.name / "pods").glob("*/resolv.conf"))
        assert len(files) == run.cluster.client_pods, (phase.name, files)
        for f in files:
            got = ResolvConf.parse(f.read_text())
            assert got == want, (phase.name, f.parent.name, f.read_text(), want.render())
        seen[phase.name] = {o for o in want.render().split() if ":" in o or "single" in o}
    # the check above can tell the phases apart: the remediations' options differ
    assert seen["single-request-reopen"] != seen["baseline"], seen
    assert "single-request" in seen["single-request"], seen
    assert "ndots:2" in seen["ndots-2"], seen
