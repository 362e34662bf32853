"""``phases[].rollout``: validated, planned, the topology sized for it, and its result
(the steps on the load's clock, the lookups while it ran) computed without root."""

from __future__ import annotations

from typing import Any

import pytest

from cthcommon.errors import BadInput
from harness.plan.phase import plan_phase, plan_run
from harness.plan.types import RolloutPlan
from harness.results.rollout import rollout_result
from harness.scenario.loader import parse_scenario
from harness.scenario.model import Scenario


def scenario(*phases: dict[str, Any], replicas: int = 2) -> Scenario:
    return parse_scenario(
        {
            "name": "r",
            "cluster": {"coredns": {"replicas": replicas}},
            "load": {"duration_s": 20, "http": None, "dns": {"rate": 100}},
            "phases": list(phases),
        }
    )


def test_a_rollout_is_planned_and_doubles_the_coredns_pods() -> None:
    s = scenario({"name": "steady"}, {"name": "roll", "rollout": {"at_s": 4}}, replicas=2)
    assert plan_phase(s, s.phases[0]).rollout is None
    assert plan_phase(s, s.phases[1]).rollout == RolloutPlan(at_s=4)
    # the new pods need new IPs: as many spare CoreDNS pods as run
    assert plan_run(s).max_coredns_replicas == 4
    assert plan_run(scenario({"name": "steady"}, replicas=3)).max_coredns_replicas == 3


@pytest.mark.parametrize(
    ("rollout", "why"),
    [({"at_s": 20}, "before the load ends"), ({"at_s": 0}, "greater than 0"), ({}, "at_s")],
)
def test_a_rollout_outside_the_load_is_bad_input(rollout: dict[str, Any], why: str) -> None:
    with pytest.raises(BadInput) as e:
        scenario({"name": "roll", "rollout": rollout})
    assert why in str(e.value)
    assert "phases[0].rollout" in str(e.value)


def test_the_result_puts_the_steps_on_the_load_clock_and_counts_the_lookups_meanwhile() -> None:
    t0 = 1000.0  # load start, monotonic
    events = [
        (t0 + 4.2, "start", "coredns-2", "10.244.2.4"),
        (t0 + 4.9, "ready", "coredns-2", "10.244.2.4"),
        (t0 + 5.0, "deleted", "coredns-0", "10.244.2.2"),
        (t0 + 5.1, "start", "coredns-3", "10.244.2.5"),
        (t0 + 5.8, "ready", "coredns-3", "10.244.2.5"),
        (t0 + 5.9, "deleted", "coredns-1", "10.244.2.3"),
        (t0 + 10.0, "exited", "coredns-0", "10.244.2.2"),
        (t0 + 10.9, "exited", "coredns-1", "10.244.2.3"),
    ]
    timeline = [[float(s), 100.0, 1.0 if s == 7 else 0.0] for s in range(20)]
    r = rollout_result(4, events, load_start=t0, load_s=20, timeline=timeline)
    assert r["started_s"] == 4.2
    assert r["finished_s"] == 10.9
    assert not r["outlasted_load"]
    assert [e["event"] for e in r["events"]][:3] == ["start", "ready", "deleted"]
    w = r["window"]
    assert (w["from_s"], w["to_s"]) == (4, 11)  # whole seconds 4..11 of the timeline
    assert w["lookups"] == 800
    assert w["timeouts"] == 1
    assert w["timeout_rate"] == pytest.approx(1 / 800)


def test_a_rollout_that_never_began_or_outlasted_the_load_says_so() -> None:
    never = rollout_result(4, [], load_start=0.0, load_s=20, timeline=[[0.0, 10.0, 0.0]])
    assert never["started_s"] is None
    assert never["outlasted_load"]
    assert never["window"]["lookups"] == 0
    late = rollout_result(
        4,
        [(18.0, "start", "a", "1"), (19.0, "deleted", "b", "2"), (25.0, "exited", "b", "2")],
        load_start=0.0,
        load_s=20,
        timeline=[],
    )
    assert late["outlasted_load"]


def test_the_reports_tell_what_the_rollout_did() -> None:
    from harness.report import render_markdown
    from harness.report.html import render_html
    from harness.results.rollout import describe
    from tests.sample_results import PhaseModel, build_run

    events = [
        (4.2, "start", "coredns-2", "10.244.2.4"),
        (4.6, "ready", "coredns-2", "10.244.2.4"),
        (4.7, "deleted", "coredns-0", "10.244.2.2"),
        (9.7, "exited", "coredns-0", "10.244.2.2"),
    ]
    timeline = [[float(s), 100.0, 2.0 if s == 5 else 0.0] for s in range(20)]
    r = rollout_result(4, events, load_start=0.0, load_s=20, timeline=timeline)
    text = describe(r)
    assert text.startswith("CoreDNS rollout: began 4.2 s into the load and ended 9.7 s")
    assert "2 of 700 lookups started in seconds 4-10 timed out (0.29%)" in text
    assert "deleted coredns-0 (10.244.2.2) at 4.7 s" in text
    run = build_run("r", [PhaseModel("rollout")])
    run["phases"][0]["rollout"] = r
    assert "CoreDNS rollout: began 4.2 s" in render_html(run)
    assert "**CoreDNS rollout:**" in render_markdown(run)
    never = rollout_result(4, [], load_start=0.0, load_s=20, timeline=[])
    assert describe(never).endswith("never began (the load ended first).")
