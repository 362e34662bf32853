"""The verdict table says, per phase, whether the phase measured in the load's steady state."""

from __future__ import annotations

from typing import Any, cast

from harness.report import render_plain_table, verdict_rows
from tests.sample_results import PhaseModel, build_run


def _with_steady(reached: list[bool | None]) -> Any:
    run = build_run("s", [PhaseModel(f"p{i}") for i in range(len(reached))])
    for p, r in zip(run["phases"], reached, strict=True):
        if r is None:
            p.pop("steady_state", None)
        else:
            cast(dict[str, Any], p)["steady_state"] = {"reached": r, "reason": "because"}
    return run


def test_a_phase_not_in_steady_state_says_so_next_to_its_verdict() -> None:
    run = _with_steady([True, False, None])
    rows = verdict_rows(run)
    assert [r[5] for r in rows] == ["yes", "NO", "-"]
    lines = [ln for ln in render_plain_table(run).splitlines() if ln.startswith("phase=")]
    assert "steady=NO verdict=" in lines[1]
    assert "steady=yes verdict=" in lines[0]
    assert lines[1].index("verdict=") > lines[1].index("steady=")  # verdict stays last


def test_repeats_are_steady_only_if_every_repeat_was() -> None:
    run = build_run("s", [PhaseModel("a"), PhaseModel("a")])
    for p, r in zip(run["phases"], [True, False], strict=True):
        p["repeat_index"] = 0 if r else 1
        cast(dict[str, Any], p)["steady_state"] = {"reached": r, "reason": "because"}
    assert verdict_rows(run)[0][5] == "NO"
