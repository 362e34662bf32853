from __future__ import annotations

import pytest

from cthcommon.errors import BadInput
from harness.dataplane.faults import race_percent, race_window_ruleset


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
    # a named counter for `nft -j list counters`, an inline one for `nft list table`
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
