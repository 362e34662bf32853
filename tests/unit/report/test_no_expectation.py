"""A phase that checks nothing is shown as "no expectation", never as a green pass."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

from harness.judge.summary import NO_EXPECTATION, summarize
from harness.report import render_junit, render_markdown, render_plain_table
from harness.report.html import render_html
from harness.report.table import print_verdict_table
from harness.results.schema import RunResult
from tests.sample_results import PhaseModel, build_run


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def _unchecked() -> RunResult:
    # a full table: many timeouts, and no expectation to judge them
    return build_run(
        "unchecked",
        [
            PhaseModel("baseline"),
            PhaseModel(
                "pooling",
                remediations=("pooling",),
                new_conns_per_s=0.4,
                seed=2,
                expect=("dns.timeout_rate <= 0.001",),
            ),
        ],
    )


def test_measured_phase_is_not_a_pass() -> None:
    run = _unchecked()
    base = run["phases"][0]
    assert base["dns"]["timeout_rate"] > 0.1  # the simulated table really overflowed
    assert base["verdict"] == "pass"
    assert base["expectations"] == []
    s = summarize(run)
    assert s[0].shown == NO_EXPECTATION
    assert s[1].shown == "pass"


def test_plain_table_and_footer() -> None:
    text = render_plain_table(_unchecked())
    lines = text.splitlines()
    assert "verdict='no expectation'" in lines[1]
    assert lines[2].endswith("verdict=pass")
    assert "run verdict: pass" in text  # one phase checked something and held


def test_run_with_no_expectation_anywhere() -> None:
    run = build_run("nothing", [PhaseModel("baseline")])
    assert "run verdict: no expectation" in render_plain_table(run)
    assert "NO EXPECTATION" in render_markdown(run)
    assert "badge none" in render_html(run)


def test_rich_table() -> None:
    out = _TTY()
    print_verdict_table(_unchecked(), out, environ={}, width=160)
    assert "no expectation" in out.getvalue()


def test_html_badge_is_not_green() -> None:
    html = render_html(_unchecked())
    assert '<span class="badge none">NO EXPECTATION</span>' in html
    assert html.count('<span class="badge pass">') >= 1  # the checked phase


def test_junit_marks_it_skipped() -> None:
    root = ET.fromstring(render_junit(_unchecked()))
    suite = root.find("testsuite")
    assert suite is not None
    assert suite.get("skipped") == "1"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    skipped = cases["baseline"].find("skipped")
    assert skipped is not None
    assert NO_EXPECTATION in (skipped.get("message") or "")
    assert cases["pooling"].find("skipped") is None


def test_waited_shown_next_to_timeouts() -> None:
    run = build_run("musl", [PhaseModel("baseline", conntrack_max=65536, new_conns_per_s=5)])
    p = run["phases"][0]
    p["dns"]["waited"] = p["dns"]["timeouts"] + 700
    html = render_html(run)
    assert f"{p['dns']['timeouts']} (+700 waited)" in html
