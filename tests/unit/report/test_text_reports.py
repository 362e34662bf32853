"""Markdown, JUnit XML, the verdict table and progress output, all from result fixtures."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

from cthcommon.stats import compare
from harness.report import render_junit, render_markdown, render_plain_table, verdict_rows
from harness.report.progress import PlainProgress, RichProgress, make_progress
from harness.report.table import print_verdict_table, use_plain
from harness.results.schema import RunResult


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_markdown(exhaustion: RunResult, race: RunResult) -> None:
    md = render_markdown(exhaustion)
    for p in exhaustion["phases"]:
        assert f"| {p['name']} |" in md
    base, pool = exhaustion["phases"][0], exhaustion["phases"][1]
    expected = compare(
        (base["dns"]["timeouts"], base["dns"]["lookups"]),
        (pool["dns"]["timeouts"], pool["dns"]["lookups"]),
    ).sentence
    assert expected in md
    assert "**exhaustion**" in md
    assert exhaustion["command"] in md
    rmd = render_markdown(race)
    assert rmd.count("**INJECTED**") == len(race["phases"])
    assert "insert-race (injected)" in rmd


def test_markdown_lists_failed_expectations(failing: RunResult) -> None:
    md = render_markdown(failing)
    assert "FAIL" in md
    assert "Failed expectations" in md
    assert "dns.timeout_rate <= 0.001" in md


def test_junit(exhaustion: RunResult, failing: RunResult) -> None:
    root = ET.fromstring(render_junit(exhaustion))
    cases = root.findall("./testsuite/testcase")
    assert [c.get("name") for c in cases] == [p["name"] for p in exhaustion["phases"]]
    for case, p in zip(cases, exhaustion["phases"], strict=True):
        props = {e.get("name"): e.get("value") for e in case.findall("./properties/property")}
        assert props["dns.timeouts"] == str(p["dns"]["timeouts"])
        assert props["conntrack.drop"] == str(p["conntrack"]["drop"])
        assert case.find("failure") is None
    assert root.find("./testsuite").get("failures") == "0"  # type: ignore[union-attr]
    froot = ET.fromstring(render_junit(failing))
    fcases = froot.findall("./testsuite/testcase")
    assert [c.get("name") for c in fcases] == ["baseline", "baseline[1]", "fqdn"]
    failures = [c for c in fcases if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == [
        p["name"] for p in failing["phases"] if p["verdict"] == "fail"
    ]
    assert "dns.timeout_rate <= 0.001" in failures[0].find("failure").get("message", "")  # type: ignore[union-attr]


def test_plain_table_in_ci(exhaustion: RunResult) -> None:
    assert use_plain(_TTY(), {"CI": "true"})
    assert not use_plain(_TTY(), {})
    assert use_plain(io.StringIO(), {})
    out = io.StringIO()
    print_verdict_table(exhaustion, out, {"CI": "true"})
    text = out.getvalue()
    assert text == render_plain_table(exhaustion)
    lines = [ln for ln in text.splitlines() if ln.startswith("phase=")]
    assert len(lines) == len(verdict_rows(exhaustion)) == 3
    assert "\x1b[" not in text


def test_rich_table_on_tty(race: RunResult) -> None:
    out = _TTY()
    print_verdict_table(race, out, {"TERM": "xterm"}, width=160)
    text = out.getvalue()
    for col in ("phase", "injected", "lookups", "conntrack drop", "verdict"):
        assert col in text
    assert "INJECTED" in text
    assert "phase=" not in text


def test_plain_progress_throttles() -> None:
    now = [0.0]
    out = io.StringIO()
    p = PlainProgress(out, every_s=5.0, clock=lambda: now[0])
    p.phase_started("baseline", 20)
    for i in range(21):
        now[0] = float(i)
        p.update(float(i), f"node-1 {i * 200}/4096")
    p.phase_finished("baseline", "pass")
    lines = out.getvalue().splitlines()
    updates = [ln for ln in lines if "node-1" in ln]
    assert len(updates) == len(range(0, 21, 5))
    assert lines[0] == "[baseline] started (20s)"
    assert lines[-1] == "[baseline] finished: pass"


def test_plain_progress_prints_a_phase_final_state_once() -> None:
    """A cluster backend keeps reporting while its pods hand in their results: the state at
    the end of the phase is printed once, at once (not throttled away), then nothing more."""
    now = [0.0]
    out = io.StringIO()
    p = PlainProgress(out, every_s=5.0, clock=lambda: now[0])
    p.phase_started("baseline", 10)
    for t in (0.5, 5.9, 9.0):
        now[0] = t
        p.update(t, "node-1 2000/4096")
    for i in range(25):  # 10.0 every second while the workers finish
        now[0] = 10.0 + i
        p.update(10.0, f"node-1 {4000 + i}/4096")
    p.phase_finished("baseline", "pass")
    p.phase_started("pooling", 10)  # the next phase starts afresh
    now[0] = 100.0
    p.update(10.0, "node-1 400/4096")
    lines = out.getvalue().splitlines()
    assert lines == [
        "[baseline] started (10s)",
        "[baseline] 0.5/10s node-1 2000/4096",
        "[baseline] 5.9/10s node-1 2000/4096",
        "[baseline] 10.0/10s node-1 4000/4096",
        "[baseline] finished: pass",
        "[pooling] started (10s)",
        "[pooling] 10.0/10s node-1 400/4096",
    ]


def test_live_run_says_which_pods_it_waits_for_and_passes_setup_lines() -> None:
    from harness.report.live import LiveRun

    out = io.StringIO()
    live = LiveRun()
    live.reporter = PlainProgress(out, clock=lambda: 0.0)
    live.notice("[kind] kind create cluster cth-r1 (3 nodes) ...")
    info = {"conntrack": {"node-1": 4096}, "max": 4096}
    live.progress("baseline", 3.0, 10, info)
    for _ in range(5):
        live.progress("baseline", 10.0, 10, {**info, "waiting": 4})
    live.progress("one", 1.0, 1, {**info, "waiting": 1})
    live.close()
    assert out.getvalue().splitlines() == [
        "[kind] kind create cluster cth-r1 (3 nodes) ...",
        "[baseline] started (10s)",
        "[baseline] 3.0/10s conntrack node-1 4096/4096 (100%)",
        "[baseline] 10.0/10s conntrack node-1 4096/4096 (100%); waiting for 4 pods' results",
        "[one] started (1s)",
        "[one] 1.0/1s conntrack node-1 4096/4096 (100%); waiting for 1 pod's results",
    ]


def test_rich_progress_prints_setup_lines_verbatim() -> None:
    out = _TTY()
    rich = RichProgress(out)
    rich.note("[kind] waiting for [3] nodes Ready ...")  # brackets are text, not markup
    rich.close()
    assert "[kind] waiting for [3] nodes Ready ..." in out.getvalue()


def test_make_progress_picks_by_environment() -> None:
    assert isinstance(make_progress(_TTY(), {"CI": "true"}), PlainProgress)
    rich = make_progress(_TTY(), {})
    assert isinstance(rich, RichProgress)
    rich.phase_started("x", 2)
    rich.update(1, "node-1 10/4096")
    rich.phase_finished("x", "pass")
    rich.close()
