"""Every report file of a run, written to one directory: what the CLI and the pytest plugin
both leave behind."""

from __future__ import annotations

import json
from pathlib import Path

from harness.report.bundle import evidence_files, write_bundle
from harness.report.html import render_html
from harness.report.junit import render_junit
from harness.report.markdown import render_markdown
from harness.result import RunResult


def write_reports(
    result: RunResult,
    report_dir: Path,
    *,
    scenario_text: str,
    evidence_dir: Path | None = None,
) -> list[Path]:
    """result.json plus the files built from it: HTML, Markdown, JUnit XML, bug bundle (with
    the scenario and the evidence under ``evidence_dir``, default ``report_dir/evidence``)."""
    report_dir.mkdir(parents=True, exist_ok=True)
    out = {
        "result.json": json.dumps(result, indent=2),
        "report.html": render_html(result),
        "summary.md": render_markdown(result),
        "junit.xml": render_junit(result),
    }
    paths = []
    for name, text in out.items():
        (report_dir / name).write_text(text)
        paths.append(report_dir / name)
    ev = evidence_files(evidence_dir or report_dir / "evidence")
    paths.append(
        write_bundle(result, report_dir / "bundle.tar.gz", scenario=scenario_text, evidence=ev)
    )
    return paths
