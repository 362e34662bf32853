"""The HTML report: self-contained, valid inline SVG, the plots the issue asks for."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from harness.judge.summary import summarize
from harness.report import render_html
from harness.results.schema import RunResult

SVG_NS = "{http://www.w3.org/2000/svg}"


def _svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(m) for m in re.findall(r"<svg .*?</svg>", html, flags=re.DOTALL)]


def _title(svg: ET.Element) -> str:
    t = svg.find(f"{SVG_NS}title")
    assert t is not None
    return t.text or ""


def test_self_contained(exhaustion: RunResult) -> None:
    html = render_html(exhaustion)
    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html
    # the only URL is the SVG namespace name, which is never fetched
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", html)


def test_plots_per_phase_and_node(exhaustion: RunResult) -> None:
    svgs = _svgs(render_html(exhaustion))
    titles = [_title(s) for s in svgs]
    n_nodes = sum(len(p["conntrack"]["nodes"]) for p in exhaustion["phases"])
    assert sum("conntrack entries over time" in t for t in titles) == n_nodes
    assert sum("DNS lookup outcomes" in t for t in titles) == len(exhaustion["phases"])
    assert sum("lookup latency" in t for t in titles) == len(exhaustion["phases"])
    n_rem = sum(1 for s in summarize(exhaustion) if s.remediations)
    assert sum(" vs baseline: " in t for t in titles) == n_rem


def test_drops_marked_where_the_counter_rose(exhaustion: RunResult) -> None:
    svgs = _svgs(render_html(exhaustion))
    for p in exhaustion["phases"]:
        for node in p["conntrack"]["nodes"]:
            want = sum(
                1
                for a, b in zip([[0, 0, 0], *node["timeline"]], node["timeline"], strict=False)
                if b[2] > a[2]
            )
            title = f"{p['name']}: {node['node']} conntrack"
            (svg,) = [s for s in svgs if _title(s).startswith(title)]
            marks = svg.findall(f".//{SVG_NS}circle[@class='drop']")
            assert len(marks) == want
    base_node = exhaustion["phases"][0]["conntrack"]["nodes"][0]
    assert base_node["drop"] > 0  # the baseline really has marks to draw


def test_latency_histogram_buckets(exhaustion: RunResult) -> None:
    svgs = _svgs(render_html(exhaustion))
    base = exhaustion["phases"][0]
    hist = base["dns"]["latency_hist"]
    (svg,) = [s for s in svgs if _title(s).startswith("baseline: lookup latency")]
    bars = svg.findall(f"{SVG_NS}rect")
    assert len(bars) == len(hist["counts"])
    labels = [t.text for t in svg.findall(f"{SVG_NS}text[@class='tick']")]
    for edge in ("1-2.5s", "2.5-5s", "5-10s"):
        assert edge in labels


def test_injected_phases_are_labelled(race: RunResult) -> None:
    html = render_html(race)
    assert html.count('<span class="inj">INJECTED</span>') >= len(race["phases"])
    assert "insert-race (injected)" in html


def test_text_is_escaped(exhaustion: RunResult) -> None:
    evil: RunResult = {**exhaustion, "command": "run <script>alert(1)</script>"}
    html = render_html(evil)
    assert "<script>" not in html
    assert "&lt;script&gt;" in html


def test_what_was_not_measured_and_the_backends_notes_are_shown(exhaustion: RunResult) -> None:
    import copy

    r = copy.deepcopy(exhaustion)
    p = r["phases"][0]
    p["unavailable"] = {"server_counters": "CoreDNS runs in the cluster's pods <here>"}
    p["notes"] = ["the load start is the harness's cue"]
    html = render_html(r)
    assert "not measured: <code>server_counters</code>: CoreDNS runs in the cluster&#x27;s" in html
    assert "&lt;here&gt;" in html  # escaped
    assert "<li>the load start is the harness&#x27;s cue</li>" in html
    # a phase with neither gets no box
    q = r["phases"][1]
    q["unavailable"], q["notes"] = {}, []
    assert render_html(r).count("How it was measured:") == 1
