"""What every report says, computed once: phases pooled over repeats, before/after verdicts.

Pure. Repeats of a phase (same name, different ``repeat_index``) are pooled: their lookups and
timeouts add up, which is how repeats buy the sample size rare events need.
"""

from __future__ import annotations

from dataclasses import dataclass

from cthcommon.stats import Comparison, compare, pct, wilson
from harness.judge.diagnosis import Diagnosis, diagnose_phase
from harness.judge.gate import gate_comparison
from harness.results.schema import PhaseResult, RunResult, Verdict

_SEVERITY: dict[Verdict, int] = {"pass": 0, "inconclusive": 1, "fail": 2, "error": 3}

# Shown instead of "pass" for a phase that checked nothing: it measured, it did not pass.
NO_EXPECTATION = "no expectation"


def shown_verdict(verdict: str, checked: int) -> str:
    """The verdict a person reads: a "pass" with nothing checked is "no expectation"."""
    return NO_EXPECTATION if verdict == "pass" and checked == 0 else verdict


def run_verdict(result: RunResult) -> str:
    """The run's verdict as shown: "no expectation" when no phase checked anything."""
    checked = sum(len(p["expectations"]) for p in result["phases"])
    return shown_verdict(result["verdict"], checked)


@dataclass(frozen=True)
class PhaseSummary:
    name: str
    remediations: tuple[str, ...]
    injected: bool
    repeats: int
    lookups: int
    timeouts: int
    ci: tuple[float, float]
    drops: int  # conntrack drop + early_drop, all nodes
    insert_failed: int
    peak_fill: float
    alert_fired: bool | None  # ConntrackTableNearFull; None when not evaluated
    verdict: Verdict
    diagnosis: Diagnosis
    failed_expectations: tuple[str, ...]
    phases: tuple[PhaseResult, ...]
    checked: int = 0  # expectations evaluated, over all repeats
    drop: int = 0  # conntrack drop alone (packets refused), all nodes
    early_drop: int = 0
    waited: int = 0  # lookups that waited for a resend (musl: under the timeout), timeouts incl.
    # measured in the load's steady state: True, False (with the reason in result.json's
    # steady_state) or None when the backend does not judge it
    steady: bool | None = None
    # the lookups and timeouts the verdict rests on: the steady window's for a phase judged
    # on it (steady_state.judged_on "window"), else the whole phase's
    judged: tuple[int, int] = (0, 0)

    @property
    def steady_text(self) -> str:
        """``yes``, ``NO`` (the verdict does not describe the steady state) or ``-``."""
        return {True: "yes", False: "NO", None: "-"}[self.steady]

    @property
    def timeouts_text(self) -> str:
        """``12``, or ``12 (+700 waited)`` when more lookups waited for a resend than timed
        out (musl resends every timeout/attempts: a wait, not a timeout)."""
        extra = self.waited - self.timeouts
        return f"{self.timeouts} (+{extra} waited)" if extra > 0 else str(self.timeouts)

    @property
    def shown(self) -> str:
        return shown_verdict(self.verdict, self.checked)

    @property
    def rate(self) -> float:
        return self.timeouts / self.lookups if self.lookups else 0.0

    @property
    def is_baseline(self) -> bool:
        return not self.remediations


@dataclass(frozen=True)
class RemediationVerdict:
    before: PhaseSummary
    after: PhaseSummary
    comparison: Comparison


def worst(verdicts: list[Verdict]) -> Verdict:
    return max(verdicts, key=lambda v: _SEVERITY[v], default="pass")


def _summarize(group: list[PhaseResult]) -> PhaseSummary:
    first = group[0]
    lookups = sum(p["dns"]["lookups"] for p in group)
    timeouts = sum(p["dns"]["timeouts"] for p in group)
    diagnoses = [diagnose_phase(p) for p in group]
    diagnosis = next((d for d in diagnoses if d.cause != "none"), diagnoses[0])
    alerts = [
        p["alerts"]["ConntrackTableNearFull"]["fired"]
        for p in group
        if "ConntrackTableNearFull" in p.get("alerts", {})
    ]
    failed = tuple(
        f"{e['expect']} (observed {e['observed']})"
        if len(group) == 1
        else f"{e['expect']} (observed {e['observed']}, repeat {p['repeat_index']})"
        for p in group
        for e in p["expectations"]
        if not e["ok"]
    )
    return PhaseSummary(
        name=first["name"],
        remediations=tuple(first["remediations"]),
        injected=any(p["injected"] for p in group),
        repeats=len(group),
        lookups=lookups,
        timeouts=timeouts,
        ci=wilson(timeouts, lookups),
        drops=sum(p["conntrack"]["drop"] + p["conntrack"]["early_drop"] for p in group),
        insert_failed=sum(p["conntrack"]["insert_failed"] for p in group),
        peak_fill=max(p["conntrack"]["peak_fill"] for p in group),
        alert_fired=any(alerts) if alerts else None,
        verdict=worst([p["verdict"] for p in group]),
        diagnosis=diagnosis,
        failed_expectations=failed,
        phases=tuple(group),
        checked=sum(len(p["expectations"]) for p in group),
        drop=sum(p["conntrack"]["drop"] for p in group),
        early_drop=sum(p["conntrack"]["early_drop"] for p in group),
        waited=sum(p["dns"].get("waited", 0) for p in group),
        steady=_steady(group),
        judged=(
            sum(_judged(p)[0] for p in group),
            sum(_judged(p)[1] for p in group),
        ),
    )


def _judged(p: PhaseResult) -> tuple[int, int]:
    """(lookups, timeouts) the phase is judged on."""
    ss = p.get("steady_state")
    if ss is not None and ss.get("judged_on") == "window":
        w = ss["window"]
        return int(w["lookups"]), int(w["timeouts"])
    return p["dns"]["lookups"], p["dns"]["timeouts"]


def _steady(group: list[PhaseResult]) -> bool | None:
    reached = [ss.get("reached") for p in group if (ss := p.get("steady_state")) is not None]
    if not reached:
        return None
    return all(r is True for r in reached)


def summarize(result: RunResult) -> list[PhaseSummary]:
    """One summary per phase name, in the order phases first ran."""
    groups: dict[str, list[PhaseResult]] = {}
    for p in result["phases"]:
        groups.setdefault(p["name"], []).append(p)
    return [_summarize(g) for g in groups.values()]


def remediation_verdicts(
    summaries: list[PhaseSummary], confidence: float = 0.95
) -> list[RemediationVerdict]:
    """Each remediated phase against its baseline: the latest earlier phase without
    remediations and with the same ``injected`` flag (else the first baseline)."""
    out = []
    for i, after in enumerate(summaries):
        if after.is_baseline:
            continue
        earlier = [s for s in summaries[:i] if s.is_baseline]
        same = [s for s in earlier if s.injected == after.injected]
        before = same[-1] if same else (earlier[0] if earlier else None)
        if before is None:
            continue
        (bn, bt), (an, at) = before.judged, after.judged
        cmp = compare((bt, bn), (at, an), confidence)
        cmp = gate_comparison(cmp, before.phases, after.phases)  # steady state or inconclusive
        out.append(RemediationVerdict(before, after, cmp))
    return out


def rate_with_ci(s: PhaseSummary) -> str:
    return f"{pct(s.rate)} [{pct(s.ci[0])}, {pct(s.ci[1])}]"
