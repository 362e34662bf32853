"""A phase that checks nothing is shown as "no expectation", never as a green pass."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET

from harness.judge.summary import NO_EXPECTATION
from harness.report import render_junit, render_markdown, render_plain_table
from harness.report.html import render_html
from harness.report.table import print_verdict_table
from tests.sample_results import PhaseModel, build_run, unchecked_run


class _TTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_table_and_footer() -> None:
    text = render_plain_table(unchecked_run())
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
    print_verdict_table(unchecked_run(), out, environ={}, width=160)
    assert "no expectation" in out.getvalue()


def test_html_badge_is_not_green() -> None:
    html = render_html(unchecked_run())
    assert '<span class="badge none">NO EXPECTATION</span>' in html
    assert html.count('<span class="badge pass">') >= 1  # the checked phase


def test_junit_marks_it_skipped() -> None:
    root = ET.fromstring(render_junit(unchecked_run()))
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
