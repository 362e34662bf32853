"""Write a run's files into its report directory, from the result and the evidence in memory.

result.json is written first and on its own, so that a failing report (a full disk, a bundle
member that cannot be named) never costs the measured result. Every other file is attempted;
failures are collected and raised together at the end.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

from cthcommon.errors import BadInput, ReportFailed
from harness.results.evidence import Evidence
from harness.results.record import RunRecord
from harness.results.schema import RunResult

DEFAULT_REPORT_ROOT = "conntrack-harness-reports"
SCENARIO_MISSING = "# scenario file not kept with this result\n"


def default_report_dir(scenario: str, run_id: str, cwd: Path | None = None) -> Path:
    """Where a run without --report-dir writes: ``./conntrack-harness-reports/<scenario>-<id>``."""
    return (cwd or Path.cwd()) / DEFAULT_REPORT_ROOT / f"{scenario}-{run_id}"


def prepare_report_dir(path: Path, *, field: str = "--report-dir") -> Path:
    """Create the directory and prove it takes files, before the run changes anything."""
    if path.exists() and not path.is_dir():
        raise BadInput("not a directory", field=field, value=str(path))
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".cth-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise BadInput(
            f"cannot write reports there ({e.strerror or e})", field=field, value=str(path)
        ) from None
    return path


def write_result_json(result: RunResult, report_dir: Path) -> Path:
    p = report_dir / "result.json"
    tmp = p.with_name(p.name + ".partial")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(p)
    return p


def write_reports(
    result: RunResult,
    report_dir: Path,
    *,
    evidence: Evidence | None = None,
    scenario_text: str | None = None,
    scenario_files: Mapping[str, bytes] | None = None,
) -> list[Path]:
    """result.json, scenario.yaml, evidence/, then HTML, Markdown, JUnit XML and the bundle."""
    from harness.report import render_html, render_junit, render_markdown
    from harness.report.bundle import write_bundle

    report_dir.mkdir(parents=True, exist_ok=True)
    paths = [write_result_json(result, report_dir)]
    ev = evidence or Evidence()
    failures: list[str] = []

    def attempt(what: str, make: Callable[[], Path | list[Path]]) -> None:
        try:
            made = make()
        except (OSError, BadInput) as e:
            failures.append(f"{what}: {e}")
            return
        if isinstance(made, Path):
            paths.append(made)

    def text(name: str, render: Callable[[RunResult], str]) -> Path:
        p = report_dir / name
        p.write_text(render(result))
        return p

    if scenario_text is not None:
        attempt("scenario.yaml", lambda: _write(report_dir / "scenario.yaml", scenario_text))
        for rel, data in (scenario_files or {}).items():  # next to it, where it looks for them
            attempt(rel, partial(_write_bytes, report_dir / rel, data))
    if evidence is not None:
        attempt("evidence", lambda: ev.write(report_dir / "evidence"))
    attempt("report.html", lambda: text("report.html", render_html))
    attempt("summary.md", lambda: text("summary.md", render_markdown))
    attempt("junit.xml", lambda: text("junit.xml", render_junit))
    attempt(
        "bundle.tar.gz",
        lambda: write_bundle(
            result,
            report_dir / "bundle.tar.gz",
            scenario=scenario_text if scenario_text is not None else SCENARIO_MISSING,
            evidence=ev.files(),  # the one evidence layout: nodes/, pods/, phases/, pcap/
            scenario_files=scenario_files,
        ),
    )
    if failures:
        raise ReportFailed(
            f"result.json is at {paths[0]}, but some reports were not written: "
            + "; ".join(failures),
            paths=paths,
        )
    return paths


def write_run(record: RunRecord, report_dir: Path) -> list[Path]:
    """Every file of a run, from its record."""
    return write_reports(
        record.result(),
        report_dir,
        evidence=record.evidence,
        scenario_text=record.scenario_text,
        scenario_files=record.scenario_files,
    )


def salvage(record: RunRecord, report_dir: Path) -> Path | None:
    """After the run failed: write what it measured, never raising over the run's own error.
    Returns result.json's path, or None when nothing was measured or even it failed."""
    if not record.phases:
        return None
    try:
        write_run(record, report_dir)
    except Exception as e:  # the run's own error matters more; say this one and go on
        print(f"conntrack-harness: {e}", file=sys.stderr)
    p = report_dir / "result.json"
    if not p.is_file():
        return None
    print(
        f"conntrack-harness: the run failed after {len(record.phases)} measured phase(s); "
        f"what was measured is in {p} (verdict: error)",
        file=sys.stderr,
    )
    return p


def _write(p: Path, content: str) -> Path:
    p.write_text(content)
    return p


def _write_bytes(p: Path, content: bytes) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(content)
    return p
