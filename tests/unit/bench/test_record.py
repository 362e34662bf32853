"""bench/records.jsonl: one dated line per bench run, each figure's spread over its repeats."""

from __future__ import annotations

import re
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import record
from bench.__main__ import figure
from harness.report.readme import latest_figures


def _result(figures: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "figures": figures,
        "machine": {"kernel": "6.1.0-test", "python": "3.11.2", "load_avg_before": [1.0, 1, 1]},
        "bench_wall_s": 12.5,
    }


def test_each_figure_keeps_its_repeats_spread_and_the_judged_value() -> None:
    values = [1.21, 0.4, 1.05]
    f = figure("dns_lookups_vs_dnsperf", statistics.median(values), values, note="x")
    rec = record.make_record(
        _result([f, figure("upstream_cold_build_s", None)]),
        date=datetime(2026, 12, 6, 14, 0, tzinfo=UTC),
        identity={"hostname": "h", "cores": 2, "memory_gib": 3.8},
        commit="c" * 40,
        dirty=False,
        skipped={"matrix"},
    )
    dns, cold = rec["figures"]
    assert (dns["min"], dns["median"], dns["max"]) == (min(values), 1.05, max(values))
    assert dns["repeats"] == len(values)
    assert dns["value"] == dns["median"]
    assert dns["unit"] == "ratio"
    assert dns["met"] is True  # 1.05 >= 1.0
    assert dns["detail"] == {"note": "x"}
    assert cold["repeats"] == 0
    assert cold["median"] is None
    assert cold["met"] is False
    assert rec["date"] == "2026-12-06T14:00:00+00:00"
    assert rec["machine"]["cores"] == 2
    assert rec["kernel"] == "6.1.0-test"
    assert rec["skipped"] == ["matrix"]


def test_a_figure_with_one_measurement_has_a_spread_of_one() -> None:
    f = figure("matrix_wall_s", 71.25)
    assert record.spread(f["values"]) == {
        "repeats": 1,
        "min": 71.25,
        "median": 71.25,
        "max": 71.25,
        "values": [71.25],
    }


def test_latest_figures_keep_what_a_later_run_skipped(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    ident = {"hostname": "h", "cores": 2, "memory_gib": 3.8}
    first = _result([figure("matrix_wall_s", 80.0), figure("topology_up_down_s", 1.5)])
    second = _result([figure("topology_up_down_s", 1.2, [1.2, 1.4, 1.3])])
    for i, res in enumerate((first, second)):
        record.append(
            record.make_record(
                res,
                date=datetime(2026, 12, 6, 14, i, tzinfo=UTC),
                identity=ident,
                commit=str(i) * 40,
                dirty=False,
                skipped=set(),
            ),
            path,
        )
    assert len(record.read(path)) == 2
    latest = latest_figures(path)
    assert latest["matrix_wall_s"]["median"] == 80.0
    assert latest["matrix_wall_s"]["commit"] == "0" * 40
    assert latest["topology_up_down_s"]["max"] == 1.4
    assert latest["topology_up_down_s"]["commit"] == "1" * 40


def test_git_state_names_this_checkout() -> None:
    commit, dirty = record.git_state()
    assert re.fullmatch(r"[0-9a-f]{40}", commit)
    assert isinstance(dirty, bool)
    assert record.git_state(Path("/")) == ("unknown", False)


def test_the_committed_records_are_well_formed() -> None:
    for rec in record.read():
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*", rec["date"])
        assert {"hostname", "cores", "memory_gib"} <= set(rec["machine"])
        assert rec["kernel"]
        assert rec["commit"]
        for f in rec["figures"]:
            got = f["values"]
            assert f["repeats"] == len(got)
            if got:
                assert f["min"] == min(got)
                assert f["max"] == max(got)
                assert f["median"] == round(statistics.median(got), 4)
