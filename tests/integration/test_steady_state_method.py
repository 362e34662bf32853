"""Prove the aged warm-up: a sped-up phase measures what a natural-length phase measures in
steady state, below, at and above the table's limit (issue 13, section 1).

A small table (nf_conntrack_max 2048) and short timeouts (TIME_WAIT and udp_timeout 10 s,
per node namespace) let the natural phase turn over within seconds: it runs 40 s from an
empty table and is measured from the moment its steady state can hold (one lifetime in, and
the table within 10 % of its level). The sped-up phase warms the table up (aged fill) and
measures 15 s. For each level their DNS timeout rates in the steady-state window agree
within their 95 % Wilson intervals, and so do their table counts.

Runtime: about 3.5 minutes (one topology, six phases).
"""

from __future__ import annotations

from typing import Any

import pytest

from harness import runner
from harness.result import PhaseResult
from harness.scenario.model import Scenario

pytestmark = [pytest.mark.kernel, pytest.mark.scenario]

CMAX = 2048
TW = 10
DNS = {"rate": 20, "resolver": "glibc", "names": ["http-server"]}
# HTTP load as a share of the table's turnover (max / TIME_WAIT new connections/s)
LEVELS = {"below": 0.6, "at": 1.0, "above": 2.0}


def phase(name: str, level: float, *, warmup: str, duration_s: float) -> dict[str, Any]:
    http = {"mode": "short-lived", "rate": round(level * CMAX / TW)}
    load = {"duration_s": duration_s, "warmup": warmup, "http": http, "dns": DNS}
    return {"name": name, "load": load}


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return a["low"] <= b["high"] and b["low"] <= a["high"]


def test_aged_warmup_agrees_with_natural_steady_state(host_unchanged: object) -> None:
    phases = []
    for name, level in LEVELS.items():
        phases.append(phase(f"natural-{name}", level, warmup="none", duration_s=40))
        phases.append(phase(f"aged-{name}", level, warmup="aged", duration_s=15))
    doc = {
        "name": "steady-state-method",
        "host": {"nf_conntrack_max": CMAX},
        "node_sysctls": {"tcp_timeout_time_wait": TW, "udp_timeout": TW},
        "cluster": {"nodes": 2, "client_pods": 4, "coredns": {"replicas": 1}},
        "phases": phases,
    }
    result = runner.run_scenario(Scenario.model_validate(doc), backend="netns")
    by_name: dict[str, PhaseResult] = {p["name"]: p for p in result["phases"]}
    rates = {}
    for name in LEVELS:
        nat = by_name[f"natural-{name}"]["steady_state"]
        aged = by_name[f"aged-{name}"]["steady_state"]
        assert aged["warmup"]["method"] == "aged-fill", name
        assert aged["reached"], aged["reason"]
        assert nat["warmup"]["method"] == "none"
        assert nat["time_to_steady_s"] is not None, nat["reason"]
        nw, aw = nat["window"], aged["window"]
        assert nw["lookups"] >= 200, (name, nw)
        assert aw["lookups"] >= 200, (name, aw)
        rates[name] = (nw, aw)
        assert overlap(nw, aw), (name, nw, aw)
        # the table itself: the same occupancy in steady state
        assert aged["observed_mean"] == pytest.approx(nat["observed_mean"], rel=0.15), name
    # the three levels are different physics: none below the limit, some above it
    assert rates["below"][0]["timeout_rate"] < rates["above"][0]["timeout_rate"]
    assert rates["below"][1]["timeout_rate"] < rates["above"][1]["timeout_rate"]
