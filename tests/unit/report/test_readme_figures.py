"""README.md's figures are generated from committed sources (harness/report/readme.py): the
demo block from a real run's result.json, the bench block from bench/records.jsonl. A hand
edit inside a block, or a source that changed without regenerating, fails here."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from cthcommon.stats import pct
from harness.judge.summary import summarize
from harness.report import readme
from harness.results.schema import RunResult
from harness.upstream import releases

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"
DEMO = ROOT / readme.DEMO_RESULT
ROLLOUT = ROOT / readme.ROLLOUT_RESULT
RECORDS = ROOT / readme.RECORDS
UPGRADE = ROOT / readme.UPGRADE_DIR


def _demo() -> RunResult:
    result: RunResult = json.loads(DEMO.read_text())
    return result


def _render(text: str) -> str:
    demo, rollout = readme.load(text, DEMO, ROLLOUT)
    upgrade = readme.load_upgrade(text, UPGRADE)
    return readme.render(text, demo, readme.latest_figures(RECORDS), rollout, upgrade)


def _block(text: str, name: str) -> str:
    start, end = readme.markers(name)
    return text.split(start)[1].split(end, maxsplit=1)[0]


def test_the_readme_is_what_its_sources_give() -> None:
    text = README.read_text()
    assert _render(text) == text, (
        "README.md's figure blocks differ from docs/figures/*.json and bench/records.jsonl: "
        "run `python -m harness.report.readme`"
    )


def test_the_demo_source_is_a_real_run_of_the_demo_scenario() -> None:
    result = _demo()
    assert result["scenario"] == "conntrack-exhaustion"
    assert result["environment"]["backend"] == "netns"
    assert result["phases"], "a run that measured phases"
    assert all(p["dns"]["lookups"] > 0 for p in result["phases"])


@pytest.mark.parametrize("name", ["demo", "rollout", "upgrade", "bench"])
def test_a_hand_edit_inside_a_block_is_caught(name: str) -> None:
    text = README.read_text()
    block = _block(text, name)
    digits = list(re.finditer(r"\d", block))
    assert digits, f"the {name} block quotes figures"
    d = digits[len(digits) // 2]
    edited_block = block[: d.start()] + str((int(d.group()) + 1) % 10) + block[d.end() :]
    edited = text.replace(block, edited_block)
    assert edited != text
    assert _render(edited) == text


def test_each_table_row_is_the_result_s_numbers() -> None:
    result = _demo()
    rows = list(readme.demo_table(result).splitlines()[2:])
    summaries = summarize(result)
    assert len(rows) == len(summaries)
    for row, s in zip(rows, summaries, strict=True):
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[0] == s.name
        assert cells[3] == f"{s.lookups:,}"
        assert cells[4].startswith(pct(s.rate))
        assert cells[5].startswith(f"{s.drop:,}")


def test_the_run_line_names_the_run() -> None:
    result = _demo()
    text = readme.demo_text(result)
    assert f"run {result['run_id']}" in text
    assert result["started_at"][:10] in text


def test_the_rollout_block_is_a_real_rollout_run() -> None:
    result: RunResult = json.loads(ROLLOUT.read_text())
    assert result["scenario"] == "coredns-rollout"
    phase = next(p for p in result["phases"] if "rollout" in p)
    w = phase["rollout"]["window"]
    block = _block(README.read_text(), "rollout")
    assert f"{w['timeouts']:,} of {w['lookups']:,} lookups" in block
    assert f"run {result['run_id']}" in block


def test_the_bench_block_quotes_the_latest_record() -> None:
    latest = readme.latest_figures(RECORDS)
    block = _block(README.read_text(), "bench")
    for name, f in latest.items():
        assert f"`{name}`" in block
        assert str(f["commit"])[:8] in block


def test_a_fractions_value_and_target_are_both_shown_in_percent() -> None:
    f = {"median": 0.0007, "min": 0.0007, "max": 0.0007, "unit": "fraction", "repeats": 1,
         "target": "< 0.05", "met": True, "value": 0.0007, "date": "2026-12-07",
         "commit": "0" * 40}  # fmt: skip
    row = next(ln for ln in readme.bench_text({"share": f}).splitlines() if "`share`" in ln)
    assert row.startswith("| `share` | 0.07% | % | 1 | < 5% | yes |"), row


def _comparisons() -> list[dict[str, Any]]:
    return [json.loads(f.read_text()) for f in sorted(UPGRADE.glob("*.json"))]


def test_the_upgrade_block_covers_every_pinned_release_with_recorded_comparisons() -> None:
    comparisons = _comparisons()
    assert comparisons, f"{readme.UPGRADE_DIR} holds the recorded comparisons"
    proxies = set()
    for c in comparisons:
        assert c["scenario"] == "udp-scale-to-zero"
        kp = c["environment"]["components"]["kube-proxy"]
        assert kp["changed"], "each comparison varies kube-proxy"
        proxies |= {kp["a"], kp["b"]}
        assert all(p["a"].get("endpoints") and p["b"].get("endpoints") for p in c["phases"])
    assert proxies == set(releases())


def test_the_upgrade_block_quotes_each_comparison_s_numbers() -> None:
    block = _block(README.read_text(), "upgrade")
    for c in _comparisons():
        item = next(
            " ".join(line.split())
            for line in block.split("\n- ")
            if f"runs {c['a']}, {c['b']}" in " ".join(line.split())
        )
        assert f"exit {readme.compare_exit(c)} " in item
        for p in c["phases"]:
            for side in ("a", "b"):
                e = p[side]["endpoints"]
                assert (
                    f"{p[side]['verdict']} ({e['stale_entries_max']:,} stale entries, "
                    f"{e['client_flows_stale_max']:,} of them the same-port clients'; "
                    f"{e['blackholed']:,} of {e['sent']:,} same-port queries blackholed, "
                    f"{e['refused']:,} refused, {e['rejected_silently']:,} rejected at the node "
                    "without an ICMP error"
                ) in item
                again = e["answered_again_s_max"]
                assert f"answered again within {again:.1f} s of the scale-up" in item
                st = p[side]["statsd"]
                assert (
                    f"statsd with no endpoint: {st['blackholed']:,} of {st['window_sent']:,} "
                    f"datagrams blackholed, {st['rejected']:,} rejected at the node)"
                ) in item


@pytest.mark.parametrize(
    ("changed", "inconclusive", "code"), [(True, True, 1), (False, True, 6), (False, False, 0)]
)
def test_the_upgrade_block_gives_compare_s_exit(
    changed: bool, inconclusive: bool, code: int
) -> None:
    assert readme.compare_exit({"verdict_changed": changed, "inconclusive": inconclusive}) == code


def test_markers_must_be_there_once() -> None:
    with pytest.raises(readme.MarkerError):
        readme.replace_block("no markers", "demo", "x")
    start, end = readme.markers("demo")
    twice = f"{start}a{end}\n{start}b{end}"
    with pytest.raises(readme.MarkerError):
        readme.replace_block(twice, "demo", "x")
    lines = f"a\n{start}\nold\n{end}\nb"
    assert readme.replace_block(lines, "demo", "new\ntext") == f"a\n{start}\nnew\ntext\n{end}\nb"
    inline = f"| a {start}old{end} b |"
    assert readme.replace_block(inline, "demo", "new\ntext") == f"| a {start}new text{end} b |"


def test_check_exits_1_on_a_stale_readme_and_regenerating_fixes_it(tmp_path: Path) -> None:
    copy = tmp_path / "README.md"
    shutil.copyfile(README, copy)
    args = ["--readme", str(copy), "--demo", str(DEMO), "--rollout", str(ROLLOUT)]
    args += ["--records", str(RECORDS), "--upgrade", str(UPGRADE)]
    assert readme.main([*args, "--check"]) == 0
    start, _ = readme.markers("demo")
    copy.write_text(copy.read_text().replace(start, f"{start}\nhand-written 42 s\n"))
    assert readme.main([*args, "--check"]) == 1
    assert readme.main(args) == 0
    assert copy.read_text() == README.read_text()
