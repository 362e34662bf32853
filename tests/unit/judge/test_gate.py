"""The gate (:mod:`harness.judge.gate`): a phase's verdict and the run's, and no before/after
conclusion from a phase outside its load's steady state (issue 18 item 5)."""

from __future__ import annotations

from typing import Any

from harness.judge.gate import phase_verdict, run_verdict
from tests.unit.steady.test_gate_verdict import BAD, OK, far_below, natural_short


def test_phase_verdict_rule() -> None:
    short = natural_short()
    assert short["reached"] is False
    assert phase_verdict([OK], short) == "inconclusive"  # held, but not in steady state
    assert phase_verdict([OK, BAD], short) == "fail"  # a violation stays a violation
    assert phase_verdict([], short) == "pass"  # nothing checked: shown "no expectation"
    assert phase_verdict([OK], None) == "pass"  # the backend did not judge it
    below = far_below()
    assert below["reached"] is True  # far below the limit: the fill cannot decide
    assert phase_verdict([OK], below) == "pass"


def test_run_verdict() -> None:
    def ph(v: str) -> dict[str, Any]:
        return {"verdict": v}

    assert run_verdict([ph("pass"), ph("pass")]) == "pass"
    assert run_verdict([ph("pass"), ph("inconclusive")]) == "inconclusive"
    assert run_verdict([ph("inconclusive"), ph("fail")]) == "fail"
    assert run_verdict([]) == "fail"
    assert run_verdict([ph("pass")], error=True) == "error"


def test_a_phase_not_in_steady_state_cannot_be_fixed() -> None:
    from cthcommon.stats import compare
    from harness.judge.gate import gate_comparison

    cmp = compare((300, 800), (0, 800))
    assert cmp.outcome == "fixed"
    steady = {"name": "baseline", "steady_state": {"reached": True, "reason": "ok"}}
    filling = {
        "name": "sysctls",
        "steady_state": {"reached": False, "reason": "the table never reached its steady state"},
    }
    assert gate_comparison(cmp, [steady], [{"name": "x"}]).outcome == "fixed"
    gated = gate_comparison(cmp, [steady], [filling])
    assert gated.outcome == "inconclusive"
    assert gated.sentence.startswith("inconclusive: not measured in steady state (sysctls:")
    assert gate_comparison(cmp, [filling], [steady]).outcome == "inconclusive"
