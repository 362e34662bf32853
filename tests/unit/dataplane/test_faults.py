from __future__ import annotations

import pytest

from cthcommon.errors import BadInput
from harness.dataplane.faults import (
    TABLE,
    listing_argv,
    named_counters,
    race_percent,
    race_window_ruleset,
    sum_node_counters,
)
from tests.nft_listings import fault_listing


@pytest.mark.parametrize(
    ("p", "percent"),
    [(0.001, 1), (0.004, 1), (0.006, 1), (0.016, 2), (0.5, 50), (0.995, 100), (1.0, 100)],
)
def test_one_race_window_rule(p: float, percent: int) -> None:
    assert race_percent(p) == percent


@pytest.mark.parametrize("p", [0, -0.1, 1.01])
def test_probability_out_of_range_is_bad_input(p: float) -> None:
    with pytest.raises(BadInput):
        race_percent(p)


def test_ruleset_counts_its_drops_both_ways() -> None:
    text = race_window_ruleset(50, "cth_race_r1")
    assert "table inet cth_race_r1 {" in text
    assert "numgen random mod 100 < 50 " in text
    # the drop counts in a named counter and in an inline one, both in `nft list table`
    assert 'counter name "hits" counter drop' in text
    assert "ct original packets 2 ct reply packets 0" in text


def test_ruleset_observes_the_window_without_adding_inline_counters() -> None:
    lines = race_window_ruleset(50).splitlines()
    rules = [x.strip() for x in lines if "ct original packets 2" in x]
    # the observers come first and carry no verdict; only the drop rule drops
    assert rules[0].endswith('ct reply packets > 0 counter name "answered"')
    assert rules[1].endswith('ct reply packets 0 counter name "open"')
    assert [r.endswith("drop") for r in rules] == [False, False, True]
    # the kube reader sums every inline counter: still exactly one, the drop's
    assert sum(x.count("counter drop") for x in lines) == 1
    assert not any(x.rstrip().endswith(" counter") for x in lines)


def test_full_probability_leaves_out_numgen() -> None:
    assert "numgen" not in race_window_ruleset(100)
    with pytest.raises(BadInput):
        race_window_ruleset(0)


def test_one_listing_command_for_every_backend() -> None:
    assert listing_argv() == ["nft", "list", "table", "inet", TABLE]
    assert listing_argv("cth_race_r1")[-1] == "cth_race_r1"


def test_named_counters_of_the_fault_table() -> None:
    """The named counters' packets, not the rules' inline counter (whose packets equal hits
    but whose name is none), nor the bytes."""
    text = fault_listing(542, 900, 31)
    assert named_counters(text) == {"hits": 542, "open": 900, "answered": 31}
    # every counter the ruleset declares is read back
    declared = {x.split()[1] for x in race_window_ruleset(50).splitlines() if "{}" in x}
    assert set(named_counters(fault_listing(0, 0, 0))) == declared == {"hits", "open", "answered"}
    # a table without named counters (or no listing at all: not loaded) has none
    assert named_counters("table inet t {\n\tchain c {\n\t}\n}\n") == {}
    assert named_counters("") == {}


def test_sum_node_counters() -> None:
    per_node = [
        named_counters(fault_listing(5, 9, 1)),
        {},  # a node without the table
        named_counters(fault_listing(7, 10, 0)),
    ]
    assert sum_node_counters(per_node) == {"hits": 12, "open": 19, "answered": 1}
    assert sum_node_counters(iter(per_node)) == sum_node_counters(per_node)  # one pass
    assert sum_node_counters([{"hits": 1}, {"open": 2}]) == {"hits": 1, "open": 2}
    assert sum_node_counters([]) == {}
    assert sum_node_counters([{}, {}]) == {}
