"""Prove the aged warm-up: a sped-up phase measures what a natural-length phase measures in
steady state, below, at and above the table's limit (issue 13, section 1).

A small table (nf_conntrack_max 2048) and short timeouts (TIME_WAIT and udp_timeout 10 s,
per node namespace) let the natural phase turn over within seconds: it runs 60 s from an
empty table and is measured from the moment its steady state can hold (one lifetime in, and
the table within 10 % of its level). The sped-up phase warms the table up (aged fill) and
measures 30 s from its first second. For each level their DNS timeout rates in the
steady-state window agree within their 95 % batch-means intervals (the kernel's GC reaps
expired entries in passes seconds apart, so the table is a sawtooth and lookups fail in
bursts: a Wilson interval, which assumes independent lookups, is too narrow here), and
their mean table counts agree within 20 %.

The levels are the HTTP load against the model's turnover (max / TIME_WAIT): 0.6, 1.0 and
2.0. On this kernel the lazy GC makes an entry live longer than its timeout, so even 0.6
fills the table between GC passes: the levels differ in how often and how long it is full.

Runtime: about 6 minutes (one topology, six phases).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness import runner
from harness.results.schema import PhaseResult
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
    return a["batch_low"] <= b["batch_high"] and b["batch_low"] <= a["batch_high"]


def test_aged_warmup_agrees_with_natural_steady_state(
    host_unchanged: object, tmp_path: Path
) -> None:
    phases = []
    for name, level in LEVELS.items():
        phases.append(phase(f"natural-{name}", level, warmup="none", duration_s=60))
        phases.append(phase(f"aged-{name}", level, warmup="aged", duration_s=30))
    doc = {
        "name": "steady-state-method",
        "host": {"nf_conntrack_max": CMAX},
        "node_sysctls": {"tcp_timeout_time_wait": TW, "udp_timeout": TW},
        "cluster": {"nodes": 2, "client_pods": 4, "coredns": {"replicas": 1}},
        "phases": phases,
    }
    result = runner.run_scenario(Scenario.model_validate(doc), backend="netns")
    (tmp_path / "result.json").write_text(json.dumps(result))  # for a failure's post-mortem
    by_name: dict[str, PhaseResult] = {p["name"]: p for p in result["phases"]}
    drops = {}
    for name in LEVELS:
        nat_p, aged_p = by_name[f"natural-{name}"], by_name[f"aged-{name}"]
        nat, aged = nat_p["steady_state"], aged_p["steady_state"]
        assert aged["warmup"]["method"] == "aged-fill", name
        assert aged["reached"], aged["reason"]
        assert nat["warmup"]["method"] == "none"
        assert nat["time_to_steady_s"] is not None, nat["reason"]
        nw, aw = nat["window"], aged["window"]
        assert nw["lookups"] >= 500, (name, nw)
        assert aw["lookups"] >= 400, (name, aw)
        assert overlap(nw, aw), (name, nw, aw)
        # the table itself: the same occupancy in steady state
        assert aged["observed_mean"] == pytest.approx(nat["observed_mean"], rel=0.2), name
        drops[name] = [p["conntrack"]["drop"] / p["duration_s"] for p in (nat_p, aged_p)]
    # more load at the same table: more new flows refused per second, in both methods
    assert drops["below"][0] < drops["above"][0]
    assert drops["below"][1] < drops["above"][1]
