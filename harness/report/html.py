"""A single, self-contained HTML report with inline SVG plots (no scripts, no network)."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from html import escape

from cthcommon.stats import pct
from harness.judge.summary import (
    PhaseSummary,
    RemediationVerdict,
    rate_with_ci,
    remediation_verdicts,
    run_verdict,
    shown_verdict,
    summarize,
)
from harness.report.locust import locust_section
from harness.report.svg import bar_chart, conntrack_chart, fmt_num, outcomes_chart
from harness.report.table import drops_text
from harness.results.endpoints import describe as describe_endpoints
from harness.results.kubeproxy import describe as describe_kube_proxy
from harness.results.rollout import describe as describe_rollout
from harness.results.schema import PhaseResult, RunResult
from harness.results.statsd import describe as describe_statsd
from harness.steady.assess import describe as describe_steady

CSS = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;
 max-width:1180px;color:#1d2330;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #dde}
h3{font-size:15px;margin:18px 0 6px}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:600;
 white-space:nowrap}
.pass{background:#1a7f37}.fail{background:#cf222e}.error{background:#8250df}
.inconclusive{background:#bf8700}
.none{background:#6e7781}
.inj{background:#bf8700;color:#fff;border-radius:4px;padding:0 6px;font-size:12px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d0d7de;padding:4px 8px;
 text-align:left}th{background:#f6f8fa}td.n{text-align:right;font-variant-numeric:tabular-nums}
.meta{color:#57606a}.grid-2{display:flex;flex-wrap:wrap;gap:10px}
.box{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;margin:8px 0;background:#fbfcfd}
code{background:#f2f4f7;padding:1px 4px;border-radius:3px}
svg.chart{background:#fff;border:1px solid #e3e6ea;border-radius:4px}
svg .ttl{font-weight:600;font-size:12px}svg .tick{font-size:10px;fill:#57606a}
svg .lbl{font-size:11px;fill:#333}svg .val{font-size:11px;font-weight:600}
svg .grid{stroke:#eef0f3}svg .axis{stroke:#8c959f}
svg .s-line{fill:none;stroke:#0969da;stroke-width:1.8}svg .area{fill:#0969da22}
svg .max{stroke:#cf222e;stroke-dasharray:6 3}svg .thr{stroke:#bf8700;stroke-dasharray:3 3}
svg .max-t{fill:#cf222e}svg .thr-t{fill:#9a6700}
svg .drop{fill:#cf222e;stroke:#fff;stroke-width:.5}
svg .s-okf{fill:#2da44e}svg .s-ent{fill:#0969da}svg .s-bad{fill:#cf222e}
svg .s-warn{fill:#d4a72c}svg .s-base{fill:#8c959f}
svg .err{stroke:#1d2330;stroke-width:1.2;fill:none}
"""


def _badge(verdict: str) -> str:
    cls = verdict if verdict in ("pass", "fail", "inconclusive", "error") else "none"
    return f'<span class="badge {cls}">{escape(verdict.upper())}</span>'


def _phase_title(p: PhaseResult) -> str:
    rep = f" (repeat {p['repeat_index']})" if p["repeat_index"] else ""
    return f"{p['name']}{rep}"


def hist_labels(edges: list[float]) -> list[str]:
    """``['<0.1s', '0.1-1s', ..., '>=10s']`` for bucket edges."""
    f = fmt_num
    return (
        [f"<{f(edges[0])}s"]
        + [f"{f(a)}-{f(b)}s" for a, b in itertools.pairwise(edges)]
        + [f"≥{f(edges[-1])}s"]
    )


def _latency(p: PhaseResult) -> str:
    hist = p["dns"].get("latency_hist")
    title = f"{_phase_title(p)}: lookup latency"
    if not hist:
        lat = p["dns"]["latency_ms"]
        return (
            f'<div class="box">{escape(title)}: no histogram in result.json; p50 '
            f"{lat['p50']} ms, p99 {lat['p99']} ms, max {lat['max']} ms</div>"
        )
    labels = hist_labels(hist["edges_s"])
    lows = [0.0, *hist["edges_s"]]
    classes = ["s-okf" if lo < 1.0 else "s-warn" if lo < 5.0 else "s-bad" for lo in lows]
    return bar_chart(
        title,
        labels,
        [float(c) for c in hist["counts"]],
        classes,
        y_label="lookups",
        value_fmt=lambda v: f"{round(v):,}",  # counts exactly: 18,787, not 18.787k
    )


def fmt_value(v: object) -> str:
    """A value as a person reads it: floats rounded, booleans in lower case."""
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.3g}" if not v.is_integer() else f"{int(v)}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def fault_text(fault: Mapping[str, object]) -> str:
    """``race-window: probability 0.3, hits 1,234, pinned cpus yes`` (``injected`` is said
    by the label around it)."""
    kind = str(fault.get("kind", "fault"))
    items = [
        f"{k.replace('_', ' ')} {fmt_value(v)}"
        for k, v in fault.items()
        if k not in ("kind", "injected")
    ]
    return f"{kind}: {', '.join(items)}" if items else kind


def _remediation_chart(v: RemediationVerdict) -> str:
    c = v.comparison
    labels = [f"{v.before.name}", f"{v.after.name}"]
    return bar_chart(
        f"{v.after.name} vs {v.before.name}: {c.outcome}",
        labels,
        [c.before.rate, c.after.rate],
        ["s-base", "s-okf" if c.significant else "s-warn"],
        y_label="timeout rate",
        errors=[c.before_ci, c.after_ci],
        y_fmt=pct,
        value_fmt=pct,
        width=360,
    )


def _summary_table(summaries: list[PhaseSummary]) -> str:
    rows = []
    for s in summaries:
        inj = '<span class="inj">INJECTED</span>' if s.injected else "no"
        alert = "—" if s.alert_fired is None else "fired" if s.alert_fired else "quiet"
        name = s.name if s.repeats == 1 else f"{s.name} (x{s.repeats})"
        drops = escape(drops_text(s.drop, s.early_drop))
        rows.append(
            f"<tr><td>{escape(name)}</td><td>{escape(', '.join(s.remediations) or '—')}</td>"
            f"<td>{inj}</td><td class=n>{s.lookups}</td><td class=n>{escape(s.timeouts_text)}</td>"
            f"<td>{escape(rate_with_ci(s))}</td><td class=n>{drops}</td>"
            f"<td class=n>{s.peak_fill:.0%}</td><td>{alert}</td>"
            f"<td>{escape(s.diagnosis.label)}</td><td>{_badge(s.shown)}</td></tr>"
        )
    head = (
        "<tr><th>phase</th><th>remediations</th><th>injected</th><th>lookups</th>"
        "<th>timeouts</th><th>timeout rate [95% CI]</th><th>conntrack drop</th>"
        "<th>peak fill</th><th>ConntrackTableNearFull</th><th>cause</th><th>verdict</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def _measured_box(p: PhaseResult) -> str:
    """What the backend could not measure, and what it noticed, as result.json has them."""
    items = [
        f"<li>not measured: <code>{escape(k)}</code>: {escape(v)}</li>"
        for k, v in (p.get("unavailable") or {}).items()
    ]
    items += [f"<li>{escape(n)}</li>" for n in p.get("notes") or []]
    return f'<div class="box">How it was measured:<ul>{"".join(items)}</ul></div>' if items else ""


def _phase_section(p: PhaseResult, s: PhaseSummary) -> str:
    title = _phase_title(p)
    inj = ' <span class="inj">INJECTED</span>' if p["injected"] else ""
    verdict = shown_verdict(p["verdict"], len(p["expectations"]))
    parts = [f"<h3>{escape(title)}{inj} {_badge(verdict)}</h3>"]
    fault = p.get("fault")
    if fault:
        parts.append(
            f'<div class="box">Injected fault: <code>{escape(fault_text(fault))}</code>. '
            "This phase is not a natural result.</div>"
        )
    if "steady_state" in p:  # harness.steady
        parts.append(f'<div class="box">{escape(describe_steady(p["steady_state"]))}</div>')
    if "rollout" in p:  # harness.results.rollout
        parts.append(f'<div class="box">{escape(describe_rollout(p["rollout"]))}</div>')
    if "endpoints" in p:  # harness.results.endpoints
        parts.append(f'<div class="box">{escape(describe_endpoints(p["endpoints"]))}</div>')
    if "statsd" in p:  # harness.results.statsd
        parts.append(f'<div class="box">{escape(describe_statsd(p["statsd"]))}</div>')
    if "kube_proxy" in p:  # harness.results.kubeproxy
        parts.append(f'<div class="box">{escape(describe_kube_proxy(p["kube_proxy"]))}</div>')
    measured = _measured_box(p)
    if measured:
        parts.append(measured)
    exp = "".join(
        f"<li><code>{escape(e['expect'])}</code>: observed {escape(fmt_value(e['observed']))} "
        f"{'✔' if e['ok'] else '✘ VIOLATED'}</li>"
        for e in p["expectations"]
    )
    if exp:
        parts.append(f"<ul>{exp}</ul>")
    d = s.diagnosis
    ev = "".join(f"<li>{escape(line)}</li>" for line in d.evidence)
    parts.append(
        f'<div class="box"><b>Diagnosis: {escape(d.label)}</b> ({d.confidence} '
        f"confidence). {escape(d.remediation)}<ul>{ev}</ul>"
        f"<span class=meta>Agreement: {escape(p['agreement']['explained'])}</span>"
        "</div>"
    )
    parts.append(locust_section(p))
    charts = [
        conntrack_chart(
            f"{title}: {n['node']} conntrack", n["timeline"], n["max"] or p["conntrack"]["max"]
        )
        for n in p["conntrack"]["nodes"]
    ]
    charts.append(outcomes_chart(f"{title}: DNS lookup outcomes", p["dns"]["timeline"]))
    charts.append(_latency(p))
    parts.append(f'<div class="grid-2">{"".join(charts)}</div>')
    return "\n".join(parts)


def render_html(result: RunResult) -> str:
    """The whole report as one HTML string: summary, remediation verdicts, per-phase plots."""
    env = result["environment"]
    summaries = summarize(result)
    by_name = {s.name: s for s in summaries}
    verdicts = remediation_verdicts(summaries)
    sysctls = "".join(
        f"<tr><td><code>{escape(k)}</code></td><td>{escape(v)}</td></tr>"
        for k, v in sorted(env["sysctls"].items())
    )
    rem = ""
    if verdicts:
        sentences = "".join(
            f"<li><b>{escape(v.after.name)}</b> vs {escape(v.before.name)}: "
            f"{escape(v.comparison.sentence)}</li>"
            for v in verdicts
        )
        charts = "".join(_remediation_chart(v) for v in verdicts)
        rem = (
            f"<h2>Remediations</h2><p class=meta>One-sided Fisher exact test of the "
            f"timeout rate after vs before; whiskers are 95% Wilson intervals.</p>"
            f"<ul>{sentences}</ul><div class=grid-2>{charts}</div>"
        )
    phases = "\n".join(_phase_section(p, by_name[p["name"]]) for p in result["phases"])
    injected_note = (
        "<p><span class=inj>INJECTED</span> phases had a fault added by the "
        "harness; they are labelled and never reported as natural results.</p>"
        if any(s.injected for s in summaries)
        else ""
    )
    title = f"conntrack-harness: {result['scenario']}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{CSS}</style></head>
<body>
<h1>{escape(title)} {_badge(run_verdict(result))}</h1>
<p class=meta>run <code>{escape(result["run_id"])}</code> · {escape(result["started_at"])} →
{escape(result["finished_at"])} · kernel <code>{escape(env["kernel"])}</code> · backend
<code>{escape(env["backend"])}</code> · host {escape(env["hostname"])}</p>
<p>Re-run: <code>{escape(result["command"])}</code></p>
{injected_note}
<h2>Verdict</h2>
{_summary_table(summaries)}
{rem}
<h2>Phases</h2>
{phases}
<h2>Environment</h2>
<table><tr><th>sysctl</th><th>value</th></tr>{sysctls}</table>
<p class=meta>Tools: {escape(", ".join(f"{k} {v}" for k, v in env["tools"].items()))}</p>
</body></html>
"""
