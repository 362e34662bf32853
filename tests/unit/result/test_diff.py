"""The upgrade check's comparison of two result.json files (harness.results.diff)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from cthcommon.errors import BadInput
from harness.results.diff import MISSING, diff_runs, read_result, render
from harness.results.schema import RunResult
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
