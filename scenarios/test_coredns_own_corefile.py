"""A user's own Corefile (seed 000's) on real CoreDNS: it runs as written, the coredns
remediation edits it, and result.json names the file and kube-proxy's version and mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.pytest_plugin import RunScenario, assert_expectations
from harness.upstream import default_version

pytestmark = [pytest.mark.kernel, pytest.mark.scenario]

SCENARIO = Path(__file__).parent / "coredns-own-corefile.yaml"


def test_seed000_corefile_runs_and_is_edited(run_scenario: RunScenario) -> None:
    result = run_scenario(str(SCENARIO))
    assert_expectations(result)
    comps = result["environment"]["components"]
    assert comps["coredns"]["corefile"] == str(SCENARIO.parent / "corefiles" / "seed000.Corefile")
    assert comps["kube-proxy"]["mode"] == "iptables"
    assert comps["kube-proxy"]["version"] == default_version()
    for p in result["phases"]:
        # real lookups were answered through the ClusterIP by CoreDNS on that Corefile
        assert p["dns"]["lookups"] > 0, p["name"]
