"""Parsing /proc/net/stat/nf_conntrack and dmesg (pure)."""

from __future__ import annotations

import pytest

from cthcommon.errors import BadInput
from harness.diagnose.procfs import parse_stat, table_full_lines

HEADER = (
    "entries clashres found new invalid ignore delete chainlength insert insert_failed "
    "drop early_drop icmp_error expect_new expect_create expect_delete search_restart"
)


def _render(rows: list[dict[str, int]]) -> str:
    cols = HEADER.split()
    lines = [HEADER]
    lines += [" ".join(f"{r.get(c, 0):08x}" for c in cols) for r in rows]
    return "\n".join(lines) + "\n"


def test_sums_per_cpu_hex_and_takes_entries_once() -> None:
    cpus = [
        {"entries": 300, "insert_failed": 0x1F, "drop": 7, "clashres": 2, "found": 1000},
        {"entries": 300, "insert_failed": 0x21, "drop": 3, "clashres": 5, "early_drop": 1},
    ]
    totals = parse_stat(_render(cpus))
    assert totals["entries"] == 300
    assert totals["insert_failed"] == sum(c.get("insert_failed", 0) for c in cpus)
    assert totals["drop"] == sum(c.get("drop", 0) for c in cpus)
    assert totals["clash_resolve"] == sum(c.get("clashres", 0) for c in cpus)
    assert "clashres" not in totals
    assert totals["early_drop"] == 1


def test_header_order_is_respected() -> None:
    text = "drop entries insert\n0000000a 00000005 00000001\n00000001 00000005 00000002\n"
    assert parse_stat(text) == {"drop": 11, "entries": 5, "insert": 3}


@pytest.mark.parametrize("text", ["", "drop entries\n0a\n", "drop\nzz\n"])
def test_bad_stat_text(text: str) -> None:
    with pytest.raises(BadInput, match="nf_conntrack"):
        parse_stat(text)


def test_table_full_lines_by_namespace() -> None:
    lines = [
        "[  10.1] nf_conntrack: table full in netns 4026532001, dropping packet",
        "[  10.2] eth0: link up",
        "[  10.3] nf_conntrack: table full in netns 4026532999, dropping packet",
        "[  10.4] nf_conntrack: table full, dropping packet",
    ]
    text = "\n".join(lines)
    assert table_full_lines(text) == [lines[0], lines[2], lines[3]]
    assert table_full_lines(text, 4026532001) == [lines[0]]
    assert table_full_lines(text, 1) == []
