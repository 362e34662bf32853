"""Against a real kind cluster. Skipped, with the reason, where docker or kind is missing.

These run in the kind workflow's environment (docker + kind + kubectl on the runner); they need
no root because the scenario here leaves the host's nf_conntrack_max alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from cthcommon.resolvconf import ResolvConf
from harness.backends.kube.commands import kubectl_exec
from harness.backends.kube.dnsconfig import pod_dns
from harness.backends.kube.kind import KindBackend, KindSettings
from harness.kindbuild import kinddocker
from harness.plan.phase import plan_phase, plan_run
from tests.unit.backends.kube.kube_fakes import scenario

ROOT = Path(__file__).resolve().parents[2]


def _why_not() -> str | None:
    for tool in ("docker", "kind", "kubectl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (the kind backend needs docker, kind and kubectl)"
    p = subprocess.run(["docker", "info"], capture_output=True, text=True, check=False)
    if p.returncode != 0:
        return f"no Docker engine answers: {p.stderr.strip()[:200]}"
    return None


REASON = _why_not()
pytestmark = [pytest.mark.skipif(REASON is not None, reason=REASON or "")]


def test_client_pods_get_the_phase_resolv_conf() -> None:
    s = scenario(
        cluster={"nodes": 1, "client_pods": 1},
        phases=[
            {
                "name": "reopen",
                "remediations": [
                    {"kind": "resolver-option", "options": [{"name": "single-request-reopen"}]}
                ],
            }
        ],
    )
    run_id = "t" + uuid.uuid4().hex[:8]
    # CTH_KIND_DOCKER decides as a run does (the workflow: auto, the runner's Docker)
    choice = kinddocker.choose(os.environ)
    backend = KindBackend(KindSettings.from_env(os.environ, choice, project_dir=ROOT))
    with backend.realize(plan_run(s), run_id) as cluster, cluster.phase(plan_phase(s, s.phases[0])):
        st = cluster.settings
        argv = kubectl_exec(st.kubeconfig, st.namespace, "client-0", ["cat", "/etc/resolv.conf"])
        text = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        plan = plan_phase(s, s.phases[0])
        want = pod_dns(plan.pod_dns, cluster._nsmap, cluster.kube_dns_ip).resolv_conf()
        assert ResolvConf.parse(text) == want
        counters = cluster.node_counters()
        assert counters
        assert all(c["max"] > 0 for c in counters.values())
