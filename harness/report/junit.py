"""JUnit XML: one testcase per phase (and repeat), properties carrying the key figures."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from harness.judge.diagnosis import diagnose_phase
from harness.judge.summary import NO_EXPECTATION, remediation_verdicts, run_verdict, summarize
from harness.results.schema import PhaseResult, RunResult


def _props(parent: ET.Element, items: list[tuple[str, object]]) -> None:
    props = ET.SubElement(parent, "properties")
    for name, value in items:
        ET.SubElement(props, "property", name=name, value=str(value))


def _phase_props(p: PhaseResult) -> list[tuple[str, object]]:
    dns, ct = p["dns"], p["conntrack"]
    ci = dns["timeout_rate_ci"]
    items: list[tuple[str, object]] = [
        ("injected", str(p["injected"]).lower()),
        ("remediations", ",".join(p["remediations"])),
        ("dns.lookups", dns["lookups"]),
        ("dns.timeouts", dns["timeouts"]),
        ("dns.timeout_rate", f"{dns['timeout_rate']:.6g}"),
        ("dns.waited", dns.get("waited", "not measured")),
        ("dns.timeout_rate_ci95", f"{ci['low']:.6g},{ci['high']:.6g}"),
        ("dns.latency_ms.p99", dns["latency_ms"]["p99"]),
        ("conntrack.max", ct["max"]),
        ("conntrack.peak_count", ct["peak_count"]),
        ("conntrack.drop", ct["drop"]),
        ("conntrack.early_drop", ct["early_drop"]),
        ("conntrack.insert_failed", ct["insert_failed"]),
        ("conntrack.clash_resolve", ct["clash_resolve"]),
        ("diagnosis", diagnose_phase(p).label),
    ]
    for name, alert in p.get("alerts", {}).items():
        items.append((f"alert.{name}", "fired" if alert["fired"] else "quiet"))
    return items


def render_junit(result: RunResult) -> str:
    """The run as a ``<testsuites>`` document; failures carry the violated expectations."""
    phases = result["phases"]
    # an inconclusive phase is a failure of type "inconclusive": never passed, never skipped
    failures = sum(p["verdict"] in ("fail", "inconclusive") for p in phases)
    errors = sum(p["verdict"] == "error" for p in phases)
    skipped = sum(p["verdict"] == "pass" and not p["expectations"] for p in phases)
    total_time = sum(p["duration_s"] for p in phases)
    root = ET.Element(
        "testsuites",
        name="conntrack-harness",
        tests=str(len(phases)),
        failures=str(failures),
        errors=str(errors),
        time=f"{total_time:.3f}",
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        name=result["scenario"],
        tests=str(len(phases)),
        failures=str(failures),
        errors=str(errors),
        skipped=str(skipped),
        time=f"{total_time:.3f}",
        timestamp=result["started_at"],
        hostname=result["environment"]["hostname"],
    )
    env = result["environment"]
    suite_props: list[tuple[str, object]] = [
        ("run_id", result["run_id"]),
        ("verdict", run_verdict(result)),
        ("kernel", env["kernel"]),
        ("backend", env["backend"]),
        ("command", result["command"]),
    ]
    for v in remediation_verdicts(summarize(result)):
        suite_props.append((f"remediation.{v.after.name}", v.comparison.sentence))
        suite_props.append((f"remediation.{v.after.name}.p_value", f"{v.comparison.p_value:.3g}"))
    _props(suite, suite_props)
    for p in phases:
        name = p["name"] if p["repeat_index"] == 0 else f"{p['name']}[{p['repeat_index']}]"
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"conntrack_harness.{result['scenario']}",
            name=name,
            time=f"{p['duration_s']:.3f}",
        )
        _props(case, _phase_props(p))
        bad = [e for e in p["expectations"] if not e["ok"]]
        if p["verdict"] == "pass" and not p["expectations"]:
            # nothing was checked: a skipped case, never a green pass
            ET.SubElement(case, "skipped", message=f"{NO_EXPECTATION}: measured, nothing checked")
        elif p["verdict"] == "error":
            ET.SubElement(
                case, "error", message="the phase did not complete", type="HarnessError"
            ).text = "\n".join(e["expect"] for e in bad)
        elif p["verdict"] == "inconclusive":
            ss = p.get("steady_state", {})
            msg = f"not measured in steady state: {ss.get('reason', 'no steady_state recorded')}"
            if ss.get("advice"):
                msg += f"; to make it conclusive: {ss['advice']}"
            ET.SubElement(case, "failure", message=msg, type="inconclusive").text = msg
        elif p["verdict"] == "fail":
            msg = "; ".join(f"{e['expect']} (observed {e['observed']})" for e in bad)
            ET.SubElement(
                case, "failure", message=msg or "phase failed", type="ExpectationViolated"
            ).text = msg
        out = ET.SubElement(case, "system-out")
        out.text = "\n".join(
            f"{e['expect']}: observed {e['observed']} -> {'ok' if e['ok'] else 'VIOLATED'}"
            for e in p["expectations"]
        )
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
