"""The table's drop column is conntrack ``drop``, the figure the progress line prints."""

from __future__ import annotations

from harness.report import render_plain_table
from harness.report.table import drops_text, verdict_rows
from tests.sample_results import PhaseModel, build_run


def test_table_drop_is_conntrack_drop() -> None:
    run = build_run("d", [PhaseModel("baseline")])
    p = run["phases"][0]
    p["conntrack"]["early_drop"] = 17  # the kernel also evicted unassured entries
    assert p["conntrack"]["drop"] > 0
    row = verdict_rows(run)[0]
    # the progress line says "drop {conntrack.drop}"; the table starts with the same number
    assert row[4].split()[0] == str(p["conntrack"]["drop"])
    assert "+17 early_drop" in row[4]
    assert f"drops='{p['conntrack']['drop']} (+17 early_drop)'" in render_plain_table(run)


def test_no_early_drop_is_just_the_number() -> None:
    assert drops_text(5, 0) == "5"
