"""The upgrade check's comparison of two result.json files (harness.results.diff)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from cthcommon.errors import BadInput
from cthcommon.stats import wilson
from harness.results.diff import BATCHES, MISSING, WILSON, diff_runs, read_result, render
from harness.results.schema import PhaseResult, RunResult
from harness.steady.assess import batch_means_ci
from tests.sample_results import PhaseModel, build_phase, exhaustion_run, race_run


def _with_components(run: RunResult, kube_proxy: str, coredns: str) -> RunResult:
    run = copy.deepcopy(run)
    run["environment"]["components"] = {
        "kube-proxy": {"version": kube_proxy, "source": "cache"},
        "coredns": {"version": coredns, "source": "cache"},
    }
    return run


def test_same_run_changes_nothing() -> None:
    a = _with_components(exhaustion_run(), "v1.35.4", "v1.13.1")
    d = diff_runs(a, copy.deepcopy(a))
    assert not d.verdict_changed
    assert [p.name for p in d.phases] == [p["name"] for p in a["phases"]]
    assert all(p.ci_overlap for p in d.phases)
    assert not any(c.changed for c in d.components.values())
    assert "no verdict changed (3 phases)" in render(d)


def test_a_flipped_verdict_is_reported_with_rates_and_environment() -> None:
    a = _with_components(exhaustion_run(), "v1.35.4", "v1.13.1")
    b = _with_components(exhaustion_run(), "v1.37.2", "v1.14.6")
    # on B the pooling phase still exhausts the table: its expectations fail
    b["phases"][1] = build_phase(
        PhaseModel(
            "pooling",
            remediations=("pooling",),
            seed=2,
            expect=("dns.timeout_rate <= 0.001", "conntrack.drop == 0"),
        )
    )
    b["environment"]["kernel"] = "6.19.0"
    d = diff_runs(a, b)
    assert d.verdict_changed
    [changed] = d.changed_phases()
    assert (changed.name, changed.a.verdict, changed.b.verdict) == ("pooling", "pass", "fail")
    assert changed.ci_overlap is False  # the rates moved beyond both intervals
    assert changed.a.drop == 0
    assert (changed.b.drop or 0) > 0
    assert d.components["kube-proxy"].changed
    assert (d.components["kube-proxy"].a, d.components["kube-proxy"].b) == ("v1.35.4", "v1.37.2")
    assert d.environment["kernel"].changed
    assert not d.environment["backend"].changed
    text = render(d)
    assert "VERDICT CHANGED in 1 phase(s): pooling" in text
    assert "v1.35.4 -> v1.37.2" in text
    assert "6.18.0 -> 6.19.0" in text
    js = d.to_json()
    json.dumps(js)  # serializable
    assert js["verdict_changed"] is True
    assert js["environment"]["components"]["coredns"] == {
        "a": "v1.13.1",
        "b": "v1.14.6",
        "changed": True,
    }
    row = next(p for p in js["phases"] if p["name"] == "pooling")
    assert row["ci_overlap"] is False
    assert len(row["a"]["ci"]) == 2


def test_phases_match_by_name_and_repeat_index_and_absent_ones_count_as_changed() -> None:
    a = exhaustion_run()
    b = copy.deepcopy(a)
    again = copy.deepcopy(b["phases"][0])
    again["repeat_index"] = 1
    b["phases"] = [b["phases"][2], b["phases"][0], again]  # reordered, pooling lost
    d = diff_runs(a, b)
    keys = [(p.name, p.repeat_index) for p in d.phases]
    assert keys == [("baseline", 0), ("pooling", 0), ("sysctls", 0), ("baseline", 1)]
    by = {(p.name, p.repeat_index): p for p in d.phases}
    assert not by["baseline", 0].verdict_changed
    assert not by["sysctls", 0].verdict_changed
    assert by["pooling", 0].b.verdict == MISSING
    assert by["pooling", 0].verdict_changed
    assert by["baseline", 1].a.verdict == MISSING
    assert by["baseline", 1].ci_overlap is None
    assert "baseline#1" in render(d)


def test_different_scenarios_are_bad_input_naming_the_field() -> None:
    with pytest.raises(BadInput, match="field 'scenario'"):
        diff_runs(exhaustion_run(), race_run())


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (None, "not found"),
        ("{not json", "not JSON"),
        ("[1, 2]", "not a conntrack-harness result.json"),
        ('{"scenario": "x", "environment": {}}', "no 'phases'"),
        ('{"scenario": "x", "environment": {}, "phases": [{}]}', "without name or verdict"),
    ],
)
def test_read_result_refuses_what_is_not_a_result(
    tmp_path: Path, content: str | None, why: str
) -> None:
    f = tmp_path / "result.json"
    if content is not None:
        f.write_text(content)
    with pytest.raises(BadInput, match=why) as e:
        read_result(f, "RESULT_B")
    assert "field 'RESULT_B'" in str(e.value)


def test_read_result_accepts_a_sample(tmp_path: Path) -> None:
    f = tmp_path / "result.json"
    f.write_text(json.dumps(race_run()))
    assert read_result(f, "RESULT_A")["scenario"] == "insert-race-injected"


def _clustered(run: RunResult, name: str, rates: list[float], lookups: int = 300) -> RunResult:
    """``run`` with phase ``name``'s DNS timeline replaced: one second per rate, ``lookups``
    a second, the seconds' timeouts clustered as a table's state makes them."""
    run = copy.deepcopy(run)
    [phase] = [p for p in run["phases"] if p["name"] == name]
    timeline = [[float(i), lookups, round(r * lookups)] for i, r in enumerate(rates)]
    n, k = lookups * len(rates), sum(int(t[2]) for t in timeline)
    low, high = wilson(k, n)
    dns = phase["dns"]
    dns.update(lookups=n, timeouts=k, timeout_rate=round(k / n, 4), timeline=timeline)
    dns["timeout_rate_ci"] = {"low": low, "high": high}
    return run


def test_rates_are_compared_by_their_one_second_batches_not_by_wilson() -> None:
    # two runs of one configuration, 5 points apart (as race.yaml's ndots-2 measured over five
    # runs on netns), each second's rate swinging as the race's does
    a = _clustered(race_run(), "baseline-race", [0.40, 0.55, 0.45, 0.60, 0.38, 0.57])
    b = _clustered(race_run(), "baseline-race", [0.45, 0.62, 0.50, 0.63, 0.44, 0.60])
    [p] = [p for p in diff_runs(a, b).phases if p.name == "baseline-race"]
    assert p.a.ci_method == p.b.ci_method == BATCHES
    assert p.a.ci == pytest.approx(batch_means_ci(_timeline(a, "baseline-race"), batch_s=1)[1:3])
    assert p.ci_overlap is True  # the seconds' spread covers the difference
    wa, wb = (_phase(r, "baseline-race")["dns"]["timeout_rate_ci"] for r in (a, b))
    assert wa["high"] < wb["low"]  # Wilson, taking every lookup as independent, says apart
    text = render(diff_runs(a, b))
    assert "Two runs of one configuration differ by more" in " ".join(text.split())
    assert "narrower still" not in text


def test_a_phase_without_a_timeline_falls_back_to_its_wilson_interval() -> None:
    a = race_run()
    for p in a["phases"]:
        p["dns"]["timeline"] = []
    [p] = [p for p in diff_runs(a, copy.deepcopy(a)).phases if p.name == "baseline-race"]
    ci = _phase(a, "baseline-race")["dns"]["timeout_rate_ci"]
    assert (p.a.ci_method, p.a.ci) == (WILSON, (ci["low"], ci["high"]))
    assert "its Wilson interval, narrower still" in render(diff_runs(a, copy.deepcopy(a)))


def _phase(run: RunResult, name: str) -> PhaseResult:
    return next(p for p in run["phases"] if p["name"] == name)


def _timeline(run: RunResult, name: str) -> list[list[float]]:
    return list(_phase(run, name)["dns"]["timeline"])
