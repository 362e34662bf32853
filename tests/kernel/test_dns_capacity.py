"""The cluster DNS sustains at least 5x the exhaustion scenario's query rate with zero loss
on a clean path: so when DNS times out in that scenario, the server is not the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.runner import ClusterSession
from harness.scenario.loader import load_scenario

pytestmark = pytest.mark.kernel


def test_cluster_dns_takes_five_times_the_scenario_rate_without_loss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host_unchanged: object
) -> None:
    monkeypatch.setenv("CONNTRACK_HARNESS_STATE_DIR", str(tmp_path))
    scenario = load_scenario("scenarios/exhaustion.yaml")
    assert scenario.load.dns is not None
    rate = 5 * scenario.load.dns.rate
    # the scenario's own cluster, names and resolver; no HTTP churn, no shrunken table
    dns = scenario.load.dns.model_copy(update={"rate": rate})
    load = scenario.load.model_copy(update={"http": None, "duration_s": 4, "dns": dns})
    clean = scenario.model_copy(
        update={"host": scenario.host.model_copy(update={"nf_conntrack_max": None}), "load": load}
    )
    with ClusterSession(clean, wait_s=600) as session:
        result = session.run_phase(clean.phases[0].model_copy(update={"expect": []}))
    d, server = result["dns"], result["server"]
    print(
        f"{d['lookups']} lookups at {rate:.0f}/s ({d['queries_sent'] / 4:.0f} queries/s): "
        f"{d['timeouts']} timeouts; servers received {server['received']}, "
        f"answered {server['answered']}"
    )
    assert d["lookups"] >= 0.95 * rate * load.duration_s
    assert d["timeouts"] == 0
    assert d["failed"] == 0
    assert d["queries_unanswered"] == 0
    assert server["received"] == server["answered"] == d["queries_sent"]
    assert result["agreement"]["node_dropped"] == 0
