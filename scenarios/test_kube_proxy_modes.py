"""exhaustion.yaml and race.yaml give the same verdicts with kube-proxy in iptables and in
nftables mode (issue 12's acceptance): each scenario runs in both modes on the real
kube-proxy, and every phase that states expectations must get the same verdict, the same
per-expectation outcome and the same diagnosed cause in both.

Part of `make test` (issue 19: nothing the product claims is opt-in). Each scenario runs its
baseline and one remediation, unchanged from the file (the aged warm-up, the load, the
durations, the expectations): the file with fewer phases, not other physics. The two pairs
are where the modes could differ: the failure itself, and a remediation that removes it.
The iptables side (the files' own mode) is the session's one run of each file as shipped;
the nftables side runs here: two runs, about a minute on 2 cores."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.pytest_plugin import RunScenario
from harness.upstream import default_version

pytestmark = [pytest.mark.kernel, pytest.mark.scenario]

MODES = ("iptables", "nftables")
# the files' own mode (KubeProxySpec's default): that side is the session's run of the file as
# shipped (conftest.py shipped_result, shared with the scenario's own test), all its phases
SHIPPED_MODE = "iptables"
ROOT = Path(__file__).resolve().parents[1]
# scenario file -> the phases compared: its baseline and one remediation
PHASES = {
    "scenarios/exhaustion.yaml": ("baseline", "pooling"),
    "scenarios/race.yaml": ("baseline", "single-request-reopen"),
}


def phases(path: str) -> list[dict[str, Any]]:
    """The file's own phases named in :data:`PHASES`, as written there."""
    data = yaml.safe_load((ROOT / path).read_text())
    kept = [p for p in data["phases"] if p["name"] in PHASES[path]]
    assert [p["name"] for p in kept] == list(PHASES[path]), f"{path} lost a compared phase"
    return kept


def verdicts(result: dict[str, Any]) -> dict[str, tuple[str, tuple[tuple[str, bool], ...], str]]:
    """Per phase with expectations: (verdict, each expectation's outcome, diagnosed cause)."""
    return {
        p["name"]: (
            p["verdict"],
            tuple((e["expect"], e["ok"]) for e in p["expectations"]),
            p["diagnosis"]["cause"],
        )
        for p in result["phases"]
        if p["expectations"]
    }


@pytest.mark.parametrize("path", list(PHASES))
def test_same_verdicts_in_iptables_and_nftables_mode(
    run_scenario: RunScenario, shipped_result: Callable[[str], dict[str, Any]], path: str
) -> None:
    by_mode = {}
    for mode in MODES:
        if mode == SHIPPED_MODE:  # the file as shipped: the session's one run of it
            result = shipped_result(path)
            result["phases"] = [p for p in result["phases"] if p["name"] in PHASES[path]]
        else:
            result = run_scenario(path, cluster={"kube_proxy": {"mode": mode}}, phases=phases(path))
        kp = result["environment"]["components"]["kube-proxy"]
        assert kp["mode"] == mode
        assert kp["version"] == default_version()
        by_mode[mode] = verdicts(result)
        print(f"{path} [{mode}]: {by_mode[mode]}")
    assert set(by_mode["iptables"]) == set(PHASES[path]), "a compared phase states nothing"
    assert by_mode["iptables"] == by_mode["nftables"]
