"""Issue 18 item 5: a gate never passes outside the steady state. A phase with expectations
not measured in its load's steady state is ``inconclusive``, the run exits 6, and compare,
JUnit, the summaries and the pytest plugin say the same."""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness import cli, runner
from harness.judge.gate import inconclusive_reasons
from harness.kernel.sampler import NodeSeries
from harness.pytest_plugin import assert_expectations
from harness.report import render_plain_table
from harness.report.html import render_html
from harness.report.junit import render_junit
from harness.report.markdown import render_markdown
from harness.results.diff import diff_runs, render
from harness.results.schema import ExpectationResult, SteadyStateResult
from harness.steady.model import SteadyState, Timeouts, dns_flows, http_flows
from harness.steady.result import steady_result
from tests.sample_results import PhaseModel, build_run
from tests.unit.test_cli import fake_run, only_report_dir, write_scenario

pytestmark = pytest.mark.unit


def _ramp(rate: float, cmax: int, until: float) -> list[tuple[float, int]]:
    return [(1.0 + i / 10, min(cmax, int(rate * i / 10))) for i in range(int(until * 10) + 1)]


def natural_short() -> SteadyStateResult:
    """The issue's case: 800 short-lived conn/s (TIME_WAIT 120 s) into 4,096 entries from a
    flushed table, in a 20 s phase: full in 5 s, yet no entry can expire before 120 s."""
    t = Timeouts()
    m = SteadyState(tuple(http_flows("short-lived", 800, 8, t) + dns_flows(40, 1, t)), 4096)
    s = NodeSeries("node-1", "ns", 4096, timeline=_ramp(840, 4096, 20))
    rows = [[float(i), 40.0, 0.0] for i in range(20)]
    return steady_result(
        m, {"node-1": s}, load_start_s=1.0, duration_s=20, dns_timeline=rows, aged=False
    )


def far_below() -> SteadyStateResult:
    t = Timeouts()
    m = SteadyState(tuple(dns_flows(10, 1, t)), 4096)  # 300 entries: 7 % of max
    s = NodeSeries("node-1", "ns", 4096, timeline=_ramp(10, 4096, 20))
    return steady_result(
        m, {"node-1": s}, load_start_s=1.0, duration_s=20, dns_timeline=[], aged=False
    )


OK: ExpectationResult = {"expect": "conntrack.drop == 0", "observed": 0.0, "ok": True}
BAD: ExpectationResult = {"expect": "conntrack.drop == 0", "observed": 9.0, "ok": False}


INCONCLUSIVE = PhaseModel(
    "baseline", new_conns_per_s=1.0, expect=("conntrack.drop == 0",), steady_state=natural_short()
)
PASSING = PhaseModel("baseline", new_conns_per_s=1.0, expect=("conntrack.drop == 0",))


@pytest.fixture(autouse=True)
def as_if_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "require_root", lambda *_a: None)


def test_run_exits_6_naming_the_phase_the_reason_and_the_length_that_would_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, "run", fake_run(INCONCLUSIVE))
    assert cli.main(["run", str(write_scenario(tmp_path))]) == 6
    err = capsys.readouterr().err
    ss = natural_short()
    assert "baseline: not measured in steady state" in err
    assert ss["reason"] in err
    assert f"at least {ss['needed_duration_s']:.0f} s" in err
    result = json.loads((only_report_dir(tmp_path) / "result.json").read_text())
    assert result["verdict"] == "inconclusive"
    assert result["phases"][0]["steady_state"]["reason"] == ss["reason"]


def test_a_violation_still_exits_1_when_not_steady(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    failing = PhaseModel("baseline", expect=("conntrack.drop == 0",), steady_state=natural_short())
    monkeypatch.setattr(runner, "run", fake_run(failing))
    assert cli.main(["run", str(write_scenario(tmp_path))]) == 1


def test_junit_reports_inconclusive_as_a_failure_of_its_own_type() -> None:
    run = build_run("s", [PASSING, INCONCLUSIVE])
    run["phases"][1]["name"] = "natural"
    root = ET.fromstring(render_junit(run).split("\n", 1)[1])
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("failures") == "1"
    assert suite.get("skipped") == "0"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["baseline"].find("failure") is None
    fail = cases["natural"].find("failure")
    assert fail is not None
    assert fail.get("type") == "inconclusive"
    assert natural_short()["reason"] in (fail.get("message") or "")
    assert cases["natural"].find("skipped") is None


def test_summaries_show_inconclusive_never_pass() -> None:
    run = build_run("s", [INCONCLUSIVE])
    assert run["verdict"] == "inconclusive"
    plain = render_plain_table(run)
    assert "steady=NO verdict=inconclusive" in plain
    assert "run verdict: inconclusive" in plain
    md = render_markdown(run)
    assert "INCONCLUSIVE" in md
    assert f"To make it conclusive: {natural_short()['advice']}" in md
    assert 'class="badge inconclusive"' in render_html(run)


def test_compare_an_inconclusive_phase_is_not_a_change_and_exits_6(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a_run = build_run("s", [PASSING])
    b_run = build_run("s", [INCONCLUSIVE])
    d = diff_runs(copy.deepcopy(a_run), copy.deepcopy(b_run))  # type: ignore[arg-type]
    assert not d.verdict_changed
    assert [p.name for p in d.inconclusive_phases()] == ["baseline"]
    assert "INCONCLUSIVE in 1 phase(s): baseline" in render(d)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(a_run))
    b.write_text(json.dumps(b_run))
    assert cli.main(["compare", str(a), str(b)]) == 6
    assert cli.main(["compare", str(a), str(a)]) == 0


def test_the_pytest_plugin_fails_an_inconclusive_run_with_the_reason() -> None:
    run = build_run("s", [INCONCLUSIVE])
    with pytest.raises(AssertionError) as e:
        assert_expectations(run)
    assert natural_short()["reason"] in str(e.value)
    assert inconclusive_reasons(run["phases"])[0] in str(e.value)
    assert_expectations(build_run("s", [PASSING]))
