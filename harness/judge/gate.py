"""The gate: a phase's verdict and the run's, from the expectations and the steady state, and
the before/after comparison a phase outside its steady state cannot support (pure).

A CI gate must never pass on a measurement that does not describe the steady state a
cluster lives in. So, per phase with expectations:

- any expectation violated: ``fail`` (a violation is a violation, steady or not: it is what
  the phase measured, and exit 1 names it);
- else, not measured in its load's steady state (``steady_state.reached`` false):
  ``inconclusive``, with ``steady_state.reason`` and ``steady_state.advice``;
- else ``pass``.

A phase whose steady state is far below the limit counts as reached (the table's fill cannot
decide it); a phase without expectations stays ``pass`` (shown as "no expectation"). The
run: ``error`` if it failed, else ``fail`` if a phase failed, else ``inconclusive`` if one is,
else ``pass``; the CLI exits 0, 1 and 6 on those.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from cthcommon.stats import Comparison
from harness.results.schema import ExpectationResult, PhaseResult, Verdict


def phase_verdict(
    checks: Sequence[ExpectationResult], steady: Mapping[str, object] | None
) -> Verdict:
    if not all(c["ok"] for c in checks):
        return "fail"
    if checks and steady is not None and steady.get("reached") is False:
        return "inconclusive"
    return "pass"


def run_verdict(phases: Sequence[Mapping[str, object]], *, error: bool = False) -> Verdict:
    """No phase at all is a ``fail``: the run measured nothing."""
    if error:
        return "error"
    verdicts = [p.get("verdict") for p in phases]
    if not verdicts or "fail" in verdicts or "error" in verdicts:
        return "fail"
    if "inconclusive" in verdicts:
        return "inconclusive"
    return "pass"


def inconclusive_reasons(phases: Iterable[PhaseResult]) -> list[str]:
    """One line per inconclusive phase: the phase, why it was not steady, and what would
    make it conclusive (what ``run`` prints before exiting 6)."""
    out = []
    for p in phases:
        if p["verdict"] != "inconclusive":
            continue
        name = p["name"] if not p["repeat_index"] else f"{p['name']}#{p['repeat_index']}"
        ss = p.get("steady_state")
        if ss is None:
            out.append(f"{name}: not measured in steady state")
            continue
        line = f"{name}: not measured in steady state: {ss['reason']}"
        advice = ss.get("advice")
        if advice:
            line += f"; to make it conclusive: {advice}"
        out.append(line)
    return out


def not_steady(phases: Iterable[Mapping[str, object]]) -> str | None:
    """The reason the first of ``phases`` (result.json phases) was not measured in steady
    state, or None when all were (or carry no ``steady_state``)."""
    for p in phases:
        ss = p.get("steady_state")
        if isinstance(ss, Mapping) and ss.get("reached") is False:
            return f"{p.get('name')}: {ss.get('reason')}"
    return None


def gate_comparison(
    cmp: Comparison,
    before: Iterable[Mapping[str, object]],
    after: Iterable[Mapping[str, object]],
) -> Comparison:
    """A comparison with a phase that never reached steady state says nothing about the
    steady state: it is inconclusive, whatever the numbers (never "fixed")."""
    reason = not_steady(after) or not_steady(before)
    if reason is None:
        return cmp
    return dataclasses.replace(
        cmp,
        outcome="inconclusive",
        sentence=f"inconclusive: not measured in steady state ({reason}); the numbers were "
        + cmp.sentence,
    )
