"""harness.runner.run fills the run's record as it goes, so nothing measured is lost, whatever
fails after it (a later phase, the evidence, the teardown). The session is a fake: no root."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from cthcommon.errors import BackendError, RestoreFailed
from harness import runner
from harness.results.evidence import Evidence
from harness.results.record import RunRecord
from harness.scenario.model import Scenario
from tests.sample_results import PhaseModel, build_phase

SCENARIO = Scenario.model_validate(
    {"name": "s", "phases": [{"name": "one"}, {"name": "two"}, {"name": "three"}]}
)


class FakeCluster:
    def __init__(self, evidence: Evidence | Exception) -> None:
        self._evidence = evidence

    def evidence(self) -> Evidence:
        if isinstance(self._evidence, Exception):
            raise self._evidence
        return self._evidence


def fake_session(
    *,
    fail_on: str | None = None,
    evidence: Evidence | Exception | None = None,
    on_exit: Exception | None = None,
) -> type:
    class Session:
        def __init__(self, scenario: Scenario, **kw: Any) -> None:
            self.run_id = kw["run_id"]
            self.env = None
            self.cluster = FakeCluster(evidence if evidence is not None else Evidence())

        def __enter__(self) -> Session:
            return self

        def __exit__(self, *exc: object) -> None:
            if on_exit is not None:
                raise on_exit

        def run_phase(self, phase: Any, rep: int, progress: Any) -> Any:
            if phase.name == fail_on:
                raise BackendError(f"{phase.name} broke")
            return build_phase(PhaseModel(phase.name, new_conns_per_s=1.0))

    return Session


def record() -> RunRecord:
    return RunRecord(scenario="s", backend="netns", command="c")


def test_a_failing_phase_keeps_the_phases_before_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "ClusterSession", fake_session(fail_on="two"))
    rec = record()
    with pytest.raises(BackendError):
        runner.run(rec, SCENARIO)
    result = rec.result()
    assert [p["name"] for p in result["phases"]] == ["one"]
    assert result["verdict"] == "error"
    assert result["error"] == "BackendError: two broke"


def test_a_failed_teardown_after_every_phase_keeps_them_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(runner, "ClusterSession", fake_session(on_exit=RestoreFailed("left")))
    rec = record()
    with pytest.raises(RestoreFailed):
        runner.run(rec, SCENARIO)
    assert len(rec.phases) == 3
    assert rec.result()["verdict"] == "error"


def test_evidence_that_cannot_be_gathered_costs_only_the_evidence(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(runner, "ClusterSession", fake_session(evidence=OSError("node gone")))
    rec = runner.run(record(), SCENARIO)
    assert rec.result()["verdict"] == "pass"
    assert rec.evidence == Evidence()
    assert "evidence not captured" in capsys.readouterr().err


def test_the_evidence_is_handed_over_in_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    ev = Evidence(nodes={"node-1": {"conntrack-S.txt": "x"}})
    monkeypatch.setattr(runner, "ClusterSession", fake_session(evidence=ev))
    assert runner.run(record(), SCENARIO).evidence is ev


def test_signals_raise_turns_term_and_hup_into_interrupted() -> None:
    old = signal.signal(signal.SIGHUP, signal.SIG_DFL)
    try:
        with pytest.raises(runner.Interrupted) as e, runner.signals_raise():
            signal.raise_signal(signal.SIGHUP)
        assert e.value.signum == signal.SIGHUP
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_DFL  # put back
    finally:
        signal.signal(signal.SIGHUP, old)


def test_signals_raise_keeps_a_signal_ignored_at_start_ignored() -> None:
    """nohup: SIGHUP ignored when the run starts stays ignored, as SIGINT does."""
    old = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with runner.signals_raise():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            signal.raise_signal(signal.SIGHUP)  # nothing happens
            assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, old)
