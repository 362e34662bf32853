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
from harness.results.schema import RunResult

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
    shot = tmp_path / "report.png"  # pytest keeps the last runs' tmp dirs, so it can be opened
    cp = _chromium(page, f"--screenshot={shot}", "--window-size=1280,2400")
    assert cp.returncode == 0, cp.stderr[-2000:]
    assert _console_lines(cp.stderr) == []
    assert shot.stat().st_size > 10_000  # a blank page compresses to a few KB
    print(f"screenshot: {shot}")


# Measures the laid-out charts in the browser and writes the findings into the page.
_MEASURE = """<script>
window.addEventListener('load', () => {
  const bad = [];
  const box = (e) => e.getBoundingClientRect();
  const overlap = (a, b) =>
    a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
  for (const svg of document.querySelectorAll('svg.chart')) {
    const name = svg.querySelector('title').textContent;
    const frame = box(svg);
    const ttl = svg.querySelector('text.ttl');
    if (box(ttl).right > frame.right + 0.5) bad.push('title cut: ' + name);
    const legend = [...svg.querySelectorAll('rect')].filter((r) => r.getAttribute('y') === '7');
    for (const r of legend) if (overlap(box(r), box(ttl))) bad.push('legend over title: ' + name);
    const ticks = [...svg.querySelectorAll('text.tick[text-anchor="end"]')].filter(
      (t) => !t.classList.contains('max-t') && !t.classList.contains('thr-t'));
    const bars = [...svg.querySelectorAll('rect')].filter((r) => r.getAttribute('y') !== '7');
    for (const b of bars) for (const t of ticks)
      if (overlap(box(b), box(t))) bad.push('bar over axis label ' + t.textContent + ': ' + name);
  }
  const out = document.createElement('pre');
  out.id = 'measured';
  out.textContent = JSON.stringify({charts: document.querySelectorAll('svg.chart').length, bad});
  document.body.appendChild(out);
});
</script>"""


def test_charts_lay_out_cleanly(tmp_path: Path, exhaustion: RunResult) -> None:
    """In the browser: no title runs past its chart, no legend sits on a title, no bar
    covers an axis label (the first 'DNS lookup outcomes' bar did)."""
    import copy
    import json

    run = copy.deepcopy(exhaustion)
    # a long remediation list, as the shipped exhaustion scenario's last phase has
    for p in run["phases"][1:]:
        p["remediations"] = [
            "pooling: pool_size=8",
            "conntrack-sysctls: nf_conntrack_max=65536, nf_conntrack_buckets=auto",
        ]
    page = tmp_path / "measure.html"
    page.write_text(render_html(run).replace("</body>", _MEASURE + "</body>"))
    cp = _chromium(page, "--dump-dom", "--window-size=1400,3000", "--virtual-time-budget=3000")
    assert cp.returncode == 0, cp.stderr[-2000:]
    m = re.search(r'<pre id="measured">(.*?)</pre>', cp.stdout, re.DOTALL)
    assert m, cp.stdout[-2000:]
    found = json.loads(m.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert found["charts"] > 5
    assert found["bad"] == []
