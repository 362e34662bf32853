"""Run-level before/after comparisons for result.json (pure): each remediated phase against
its baseline, for the timeout rate (one-sided Fisher exact) and for queries per lookup."""

from __future__ import annotations

from harness.judge.summary import remediation_verdicts, summarize
from harness.results.schema import Comparison, PhaseResult, RunResult


def _mean_qpl(phases: tuple[PhaseResult, ...]) -> float:
    lookups = sum(p["dns"]["lookups"] for p in phases)
    sent = sum(p["dns"]["queries_sent"] for p in phases)
    return sent / lookups if lookups else 0.0


def comparisons(result: RunResult) -> list[Comparison]:
    out: list[Comparison] = []
    for v in remediation_verdicts(summarize(result)):
        b, a = v.comparison.before, v.comparison.after
        rb, ra = b.rate, a.rate
        out.append(
            Comparison(
                baseline=v.before.name,
                phase=v.after.name,
                metric="dns.timeout_rate",
                before=rb,
                after=ra,
                change=round((ra - rb) / rb, 4) if rb else 0.0,
                p_value=v.comparison.p_value,
                sentence=v.comparison.sentence,
            )
        )
        qb, qa = _mean_qpl(v.before.phases), _mean_qpl(v.after.phases)
        if qb:
            change = (qa - qb) / qb
            word = "fewer" if change < 0 else "more"
            out.append(
                Comparison(
                    baseline=v.before.name,
                    phase=v.after.name,
                    metric="dns.queries_per_lookup",
                    before=round(qb, 3),
                    after=round(qa, 3),
                    change=round(change, 4),
                    p_value=None,
                    sentence=f"queries per lookup {qb:.2f} -> {qa:.2f} ({abs(change):.0%} {word})",
                )
            )
    return out
