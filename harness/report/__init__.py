"""Turn a run's result.json into files people read: HTML, Markdown, JUnit XML, a bug bundle."""

from harness.report.bundle import write_bundle
from harness.report.html import render_html
from harness.report.junit import render_junit
from harness.report.markdown import render_markdown
from harness.report.table import print_verdict_table, render_plain_table, verdict_rows

__all__ = [
    "print_verdict_table",
    "render_html",
    "render_junit",
    "render_markdown",
    "render_plain_table",
    "verdict_rows",
    "write_bundle",
]
