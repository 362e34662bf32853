"""Open the rendered report in headless Chromium: no console output, charts in the DOM, and a
screenshot for a human to look at."""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from harness.report import render_html
from harness.result import RunResult

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt: chromium)"),
]


def _chromium(page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="cth-chromium-") as profile:
        return subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _console_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln]


def test_console_detection_works(tmp_path: Path) -> None:
    """Positive control: a page that logs an error is caught by the same check."""
    page = tmp_path / "control.html"
    page.write_text("<!DOCTYPE html><script>console.error('control-error')</script>")
    cp = _chromium(page, "--dump-dom")
    assert any("control-error" in ln for ln in _console_lines(cp.stderr))


def test_report_opens_cleanly(tmp_path: Path, exhaustion: RunResult) -> None:
    page = tmp_path / "report.html"
    html = render_html(exhaustion)
    page.write_text(html)
    dom = _chromium(page, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert _console_lines(dom.stderr) == []
    # every chart survived HTML parsing into the live DOM
    assert len(re.findall(r"<svg\b", dom.stdout)) == len(re.findall(r"<svg\b", html))
    shots = Path(tempfile.mkdtemp(prefix="cth-report-shot-"))
    shot = shots / "report.png"
    cp = _chromium(page, f"--screenshot={shot}", "--window-size=1280,2400")
    assert cp.returncode == 0, cp.stderr[-2000:]
    assert _console_lines(cp.stderr) == []
    assert shot.stat().st_size > 10_000  # a blank page compresses to a few KB
    print(f"screenshot: {shot}")
