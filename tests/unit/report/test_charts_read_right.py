"""What a person sees in the charts (issue 13 §8): bars clear of the axis labels, whole
titles, a scale that fits the data, faults in words."""

from __future__ import annotations

import itertools
import re

from harness.report.html import fault_text, render_html
from harness.report.svg import (
    ML,
    MR,
    TITLE_CHAR_PX,
    W,
    bar_chart,
    conntrack_chart,
    outcomes_chart,
    wrap_title,
)
from harness.results.schema import RunResult


def _rects(svg: str, cls: str) -> list[tuple[float, float]]:
    found = re.findall(rf'<rect class="{cls}" x="([-\d.]+)" y="([-\d.]+)" width="([\d.]+)"', svg)
    return [(float(x), float(w)) for x, y, w in found if y != "7"]  # y=7: the legend's swatch


def _ticks_y(svg: str) -> list[str]:
    return re.findall(
        r'<text class="tick" x="[\d.]+" y="[\d.]+" text-anchor="end">([^<]*)</text>', svg
    )


def _title_lines(svg: str) -> list[str]:
    return re.findall(r"<tspan [^>]*>([^<]*)</tspan>", svg)


def test_first_outcome_bar_is_right_of_the_y_axis() -> None:
    # the load generator's rows: [second, lookups started in it, timeouts among them]
    timeline = [[0.0, 150.0, 0.0], [1.0, 170.0, 0.0], [2.0, 160.0, 0.0], [3.0, 159.0, 80.0]]
    svg = outcomes_chart("baseline: DNS lookup outcomes", timeline)
    bars = _rects(svg, "s-okf")
    assert len(bars) == 4
    for x, w in bars:
        assert x >= ML  # nothing drawn over the tick labels, which end at ML - 6
        assert x + w <= W - MR
    # bars in time order, not overlapping
    for (x0, w0), (x1, _) in itertools.pairwise(bars):
        assert x0 + w0 <= x1


def test_long_titles_wrap_whole() -> None:
    title = (
        "before/after pooling: pool_size=8, conntrack-sysctls: nf_conntrack_max=65536, "
        "nf_conntrack_buckets=auto, tcp_timeout_time_wait=30: fixed"
    )
    svg = bar_chart(title, ["a", "b"], [0.1, 0.0], ["s-base", "s-okf"], y_label="r", width=360)
    lines = _title_lines(svg)
    assert len(lines) > 1
    assert " ".join(lines) == title  # every word shown, none cut
    for line in lines:
        assert len(line) * TITLE_CHAR_PX <= 360 - ML - MR or " " not in line
    # the plot moved down to make room: the frame is taller than a one-line chart
    h = int(re.search(r'height="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    one = bar_chart("t", ["a", "b"], [0.1, 0.0], ["s-base", "s-okf"], y_label="r", width=360)
    assert h > int(re.search(r'height="(\d+)"', one).group(1))  # type: ignore[union-attr]


def test_wrap_leaves_room_for_the_legend() -> None:
    lines = wrap_title("x " * 60, W, reserve=200)
    assert len(lines[0]) * TITLE_CHAR_PX <= W - ML - MR - 200
    assert len(lines[1]) * TITLE_CHAR_PX <= W - ML - MR


def test_remediation_charts_have_distinct_titles(exhaustion: RunResult) -> None:
    html = render_html(exhaustion)
    start = html.index("<h2>Remediations</h2>")
    section = html[start : html.index("<h2>Phases</h2>")]
    titles = [" ".join(_title_lines(svg)) for svg in section.split("<svg")[1:]]
    assert len(titles) == 2
    assert len(set(titles)) == len(titles)


def test_conntrack_chart_scales_to_the_phase_peak() -> None:
    timeline = [[t * 0.5, min(4096.0, 400.0 * t), 0.0] for t in range(20)]
    svg = conntrack_chart("race: node-1 conntrack", timeline, 262144)
    ticks = [float(t.rstrip("k")) * (1000 if t.endswith("k") else 1) for t in _ticks_y(svg)]
    assert max(ticks) <= 2 * 4096  # the line fills the chart, not 1.5 % of it
    assert max(ticks) >= 0.75 * 4096
    assert "nf_conntrack_max 262144" in svg  # the limit is still named


def test_conntrack_chart_keeps_the_limit_when_near() -> None:
    timeline = [[t * 0.5, min(4096.0, 400.0 * t), 0.0] for t in range(20)]
    svg = conntrack_chart("baseline: node-1 conntrack", timeline, 4096)
    assert '<line class="max"' in svg
    assert '<line class="thr"' in svg


def test_fault_in_words_with_rounded_numbers() -> None:
    fault: dict[str, object] = {
        "kind": "race-window",
        "injected": True,
        "probability": 0.30000000000000004,
        "hits": 12345,
        "pinned_cpus": True,
    }
    text = fault_text(fault)
    assert text == "race-window: probability 0.3, hits 12,345, pinned cpus yes"


def test_fault_not_a_python_dict(race: RunResult) -> None:
    for p in race["phases"]:
        p["fault"] = {"kind": "race-window", "injected": True, "probability": 1 / 3, "hits": 7}
    html = render_html(race)
    assert "{'kind'" not in html
    assert "0.3333333" not in html
    assert "race-window: probability 0.333, hits 7" in html
