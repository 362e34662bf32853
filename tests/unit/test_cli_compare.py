"""`conntrack-harness compare`: exit codes, the table and --json, and `--run` passing each
Kubernetes release to the backend (the runs are fakes here; the real one is
tests/kernel/test_upgrade_compare.py)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from cthcommon.errors import BadInput
from harness import backendcheck, cli, runner
from harness.backends.base import KUBERNETES_RELEASE, BackendOptions
from harness.results.record import RunRecord, basic_environment
from harness.scenario.model import Scenario
from tests.sample_results import PhaseModel, build_phase, exhaustion_run, race_run
from tests.unit.test_cli import write_scenario


def _write(path: Path, run: Any) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run))
    return str(path)


def test_same_verdicts_exit_0_with_a_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = _write(tmp_path / "a/result.json", exhaustion_run())
    b = _write(tmp_path / "b/result.json", exhaustion_run())
    assert cli.main(["compare", a, b]) == 0
    out = capsys.readouterr().out
    assert "no verdict changed (3 phases)" in out
    assert "pooling" in out


def test_a_changed_verdict_exits_1_and_json_says_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = exhaustion_run()
    worse = copy.deepcopy(run)
    worse["phases"][2] = build_phase(
        PhaseModel("sysctls", seed=3, expect=("dns.timeout_rate <= 0.001", "conntrack.drop == 0"))
    )
    a = _write(tmp_path / "a/result.json", run)
    b = _write(tmp_path / "b/result.json", worse)
    assert cli.main(["compare", a, b, "--json"]) == 1
    captured = capsys.readouterr()
    js = json.loads(captured.out)
    assert js["verdict_changed"] is True
    assert [p["name"] for p in js["phases"] if p["verdict_changed"]] == ["sysctls"]
    assert "upgrade changed a verdict: sysctls#0 pass -> fail" in captured.err


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["compare", "MISSING/result.json", "B"], "RESULT_A"),
        (["compare", "ONE"], "RESULT_JSON"),
        (["compare", "--kubernetes", "v1.35.4", "v1.37.2", "A", "B"], "--kubernetes"),
    ],
)
def test_bad_arguments_exit_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], field: str
) -> None:
    b = _write(tmp_path / "b/result.json", exhaustion_run())
    argv = [b if x == "B" else x for x in argv]
    assert cli.main(argv) == 2
    assert f"field '{field}'" in capsys.readouterr().err


def test_different_scenarios_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(tmp_path / "a/result.json", exhaustion_run())
    b = _write(tmp_path / "b/result.json", race_run())
    assert cli.main(["compare", a, b]) == 2
    assert "field 'scenario'" in capsys.readouterr().err


def test_not_a_result_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = _write(tmp_path / "a/result.json", exhaustion_run())
    b = _write(tmp_path / "b/result.json", {"hello": 1})
    assert cli.main(["compare", a, b]) == 2
    assert "field 'RESULT_B'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("versions", "why"),
    [(["v1.35.4", "v9.9.9"], "not pinned"), (["v1.35.4", "v1.35.4"], "the same")],
)
def test_run_refuses_unknown_or_equal_releases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], versions: list[str], why: str
) -> None:
    s = write_scenario(tmp_path)
    assert cli.main(["compare", "--run", str(s), "--kubernetes", *versions]) == 2
    err = capsys.readouterr().err
    assert "field '--kubernetes'" in err
    assert why in err


def test_kubernetes_release_is_a_netns_only_option() -> None:
    options = BackendOptions(extra={KUBERNETES_RELEASE: "v1.37.2"})
    scenario = Scenario.model_validate({"name": "x", "phases": [{"name": "p"}]})
    with pytest.raises(BadInput, match="--kubernetes"):
        backendcheck.check_backend("kind", scenario, options)
    backendcheck.check_backend("netns", scenario, options)


def test_run_runs_once_per_release_in_its_own_dir_and_compares(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[str | None] = []

    def fake(record: RunRecord, scenario: Scenario, **kw: Any) -> RunRecord:
        release = kw["options"].extra.get(KUBERNETES_RELEASE)
        seen.append(release)
        env = basic_environment("netns")
        env["components"] = {"kube-proxy": {"version": str(release), "source": "fake"}}
        record.environment = env
        record.add_phase(build_phase(PhaseModel("baseline", new_conns_per_s=1.0)))
        record.finish()
        return record

    monkeypatch.setattr(runner, "require_root", lambda *_a: None)
    monkeypatch.setattr(runner, "run", fake)
    s = write_scenario(tmp_path)
    out = tmp_path / "reports"
    argv = ["compare", "--run", str(s), "--kubernetes", "v1.35.4", "v1.37.2"]
    assert cli.main([*argv, "--report-dir", str(out), "--json"]) == 0
    assert seen == ["v1.35.4", "v1.37.2"]
    assert (out / "v1.35.4/result.json").is_file()
    assert (out / "v1.37.2/result.json").is_file()
    js = json.loads(capsys.readouterr().out)  # only the comparison: the runs print to stderr
    assert js["environment"]["components"]["kube-proxy"] == {
        "a": "v1.35.4",
        "b": "v1.37.2",
        "changed": True,
    }


def test_run_keeps_going_when_a_release_violates_an_expectation_and_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def fake(record: RunRecord, scenario: Scenario, **kw: Any) -> RunRecord:
        newer = kw["options"].extra.get(KUBERNETES_RELEASE) == "v1.37.2"
        conns = 400.0 if newer else 1.0  # B fills the table: its expectation fails
        record.add_phase(
            build_phase(
                PhaseModel("baseline", new_conns_per_s=conns, expect=("conntrack.drop == 0",))
            )
        )
        record.finish()
        return record

    monkeypatch.setattr(runner, "require_root", lambda *_a: None)
    monkeypatch.setattr(runner, "run", fake)
    s = write_scenario(tmp_path)
    out = tmp_path / "reports"
    argv = ["compare", "--run", str(s), "--kubernetes", "v1.35.4", "v1.37.2"]
    assert cli.main([*argv, "--report-dir", str(out)]) == 1
    a = json.loads((out / "v1.35.4/result.json").read_text())
    b = json.loads((out / "v1.37.2/result.json").read_text())
    assert (a["verdict"], b["verdict"]) == ("pass", "fail")
    captured = capsys.readouterr()
    assert "VERDICT CHANGED in 1 phase(s): baseline" in captured.out
    assert "the upgrade changed a verdict: baseline#0 pass -> fail" in captured.err
