"""A Markdown summary of a run, sized for a PR comment."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.judge.summary import (
    NO_EXPECTATION,
    rate_with_ci,
    remediation_verdicts,
    run_verdict,
    summarize,
)
from harness.report.table import drops_text
from harness.results.endpoints import describe as describe_endpoints
from harness.results.kubeproxy import describe as describe_kube_proxy
from harness.results.rollout import describe as describe_rollout
from harness.results.schema import RunResult
from harness.results.statsd import describe as describe_statsd
from harness.steady.assess import describe as describe_steady

_ICON = {"pass": "✅", "fail": "❌", "inconclusive": "❔", "error": "⚠️", NO_EXPECTATION: "⚪"}


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(result: RunResult) -> str:
    """Verdict, per-phase table with 95 % intervals, remediation verdicts, diagnosis, env."""
    env = result["environment"]
    summaries = summarize(result)
    verdict = run_verdict(result)
    out = [
        f"### {_ICON.get(verdict, '')} conntrack-harness: `{result['scenario']}` "
        f"**{verdict.upper()}**",
        "",
        f"kernel `{env['kernel']}` · backend `{env['backend']}` · run `{result['run_id']}`",
        "",
        "| phase | injected | lookups | timeout rate [95% CI] | conntrack drop | "
        "near-full alert | cause | verdict |",
        "|---|---|---:|---|---:|---|---|---|",
    ]
    for s in summaries:
        name = s.name if s.repeats == 1 else f"{s.name} (x{s.repeats})"
        alert = "—" if s.alert_fired is None else ("fired" if s.alert_fired else "quiet")
        drops = drops_text(s.drop, s.early_drop)
        out.append(
            f"| {_cell(name)} | {'**INJECTED**' if s.injected else 'no'} | {s.lookups} | "
            f"{rate_with_ci(s)} | {drops} | {alert} | {_cell(s.diagnosis.label)} | "
            f"{_ICON.get(s.shown, '')} {s.shown} |"
        )
    verdicts = remediation_verdicts(summaries)
    if verdicts:
        out += ["", "**Remediations** (one-sided Fisher exact test vs the baseline):", ""]
        for v in verdicts:
            what = ", ".join(v.after.remediations)
            out.append(
                f"- `{v.after.name}` ({_cell(what)}) vs `{v.before.name}`: "
                f"{_cell(v.comparison.sentence)}"
            )
    sections: list[tuple[str, str, Callable[[Any], str]]] = [
        ("steady_state", "Steady state", describe_steady),  # harness.steady
        ("rollout", "CoreDNS rollout", describe_rollout),  # harness.results.rollout
        ("endpoints", "Endpoint events", describe_endpoints),  # harness.results.endpoints
        ("statsd", "statsd sender", describe_statsd),  # harness.results.statsd
        ("kube_proxy", "kube-proxy", describe_kube_proxy),  # harness.results.kubeproxy
    ]
    for key, title, describe in sections:
        found = [(p["name"], p[key]) for p in result["phases"] if key in p]  # type: ignore[literal-required]
        if found:
            out += ["", f"**{title}:**", ""]
            out += [f"- `{name}`: {_cell(describe(x))}" for name, x in found]
    failed = [(s.name, e) for s in summaries for e in s.failed_expectations]
    if failed:
        out += ["", "**Failed expectations:**", ""]
        out += [f"- `{name}`: `{e}`" for name, e in failed]
    causes = [s for s in summaries if s.diagnosis.cause != "none"]
    if causes:
        out += ["", "<details><summary>Diagnosis</summary>", ""]
        for s in causes:
            d = s.diagnosis
            out.append(
                f"- `{s.name}`: **{d.label}** ({d.confidence} confidence). {_cell(d.remediation)}"
            )
            out += [f"  - {_cell(line)}" for line in d.evidence]
        out += ["", "</details>"]
    if any(s.injected for s in summaries):
        out += [
            "",
            "_Phases marked INJECTED had a fault added by the harness; they are not "
            "natural results._",
        ]
    out += ["", f"Re-run: `{result['command']}`", ""]
    return "\n".join(out)
