"""cthcommon.stats against values computed independently (exact rationals, R's documented outputs)."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest

from cthcommon.errors import BadInput
from cthcommon.stats import (
    bucket_latencies,
    compare,
    fisher_less,
    log_fisher_less,
    lookups_to_detect,
    lookups_to_show_fix,
    wilson,
    z_two_sided,
)


def exact_fisher_less(ka: int, na: int, kb: int, nb: int) -> Fraction:
    """P(X <= ka) with exact integers (math.comb), independent of the lgamma path."""
    events, total = ka + kb, na + nb
    den = math.comb(total, events)
    num = sum(math.comb(na, x) * math.comb(nb, events - x) for x in range(0, ka + 1))
    return Fraction(num, den)


def quadratic_wilson(k: int, n: int, z: float) -> tuple[float, float]:
    """Roots of (k/n - p)^2 = z^2 p (1-p) / n, solved as a plain quadratic in p."""
    ph = k / n
    a = 1 + z * z / n
    b = -(2 * ph + z * z / n)
    c = ph * ph
    disc = math.sqrt(b * b - 4 * a * c)
    return (-b - disc) / (2 * a), (-b + disc) / (2 * a)


def test_z_quantile_matches_textbook() -> None:
    assert z_two_sided(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert z_two_sided(0.99) == pytest.approx(2.575829, abs=1e-6)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # R: prop.test(5, 10, correct = FALSE)$conf.int
        (5, 10, 0.2365931, 0.7634069),
        # R: binom::binom.confint(0, 10, method = "wilson"): upper = z^2 / (n + z^2)
        (0, 10, 0.0, 0.2775328),
    ],
)
def test_wilson_known_values(k: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson(k, n)
    assert lo == pytest.approx(low, abs=1e-6)
    assert hi == pytest.approx(high, abs=1e-6)


@pytest.mark.parametrize(("k", "n"), [(1, 7), (15, 100), (312, 4000), (3999, 4000), (2, 3)])
@pytest.mark.parametrize("conf", [0.9, 0.95, 0.99])
def test_wilson_equals_quadratic_roots(k: int, n: int, conf: float) -> None:
    lo, hi = wilson(k, n, conf)
    qlo, qhi = quadratic_wilson(k, n, z_two_sided(conf))
    assert lo == pytest.approx(qlo, abs=1e-12)
    assert hi == pytest.approx(qhi, abs=1e-12)
    assert lo <= k / n <= hi


def test_wilson_edges() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(7, 7)[1] == 1.0
    assert wilson(0, 4000)[0] == 0.0
    # more trials -> narrower interval
    assert wilson(0, 4000)[1] < wilson(0, 400)[1]
    with pytest.raises(BadInput, match="wilson"):
        wilson(5, 4)
    with pytest.raises(BadInput, match="confidence"):
        wilson(1, 4, 1.0)


def test_fisher_tea_tasting() -> None:
    # R: fisher.test(TeaTasting, alternative = "greater")$p.value == 0.2429 (= 17/70);
    # the same table read as "after 1/4 vs before 3/4, alternative less".
    assert fisher_less(1, 4, 3, 4) == pytest.approx(17 / 70, rel=1e-12)
    assert fisher_less(1, 4, 3, 4) == pytest.approx(0.2429, abs=5e-5)


@pytest.mark.parametrize(
    "table",
    [(0, 20, 5, 20), (3, 50, 9, 40), (10, 10, 0, 10), (0, 1, 1, 1), (7, 300, 7, 300), (0, 5, 0, 5)],
)
def test_fisher_matches_exact_rational(table: tuple[int, int, int, int]) -> None:
    assert fisher_less(*table) == pytest.approx(float(exact_fisher_less(*table)), rel=1e-10)


def test_fisher_tiny_p_is_exact_in_log_space() -> None:
    exact = exact_fisher_less(0, 4000, 312, 4000)
    log10_exact = math.log10(exact.numerator) - math.log10(exact.denominator)
    log10_p = log_fisher_less(0, 4000, 312, 4000) / math.log(10)
    assert log10_p == pytest.approx(log10_exact, abs=1e-6)
    assert log10_exact < -90


def test_compare_fixed_sentence() -> None:
    c = compare((312, 4000), (0, 4000))
    assert c.outcome == "fixed"
    assert c.significant
    assert c.log10_p < -90
    assert c.sentence.startswith("fixed: 312/4000 -> 0/4000")
    assert "p < 1e-" in c.sentence
    assert "95% sure" in c.sentence


def test_compare_other_outcomes() -> None:
    assert compare((40, 1000), (12, 1000)).outcome == "improved"
    assert compare((1, 1000), (0, 1000)).outcome == "inconclusive"
    inc = compare((1, 1000), (0, 1000))
    assert inc.lookups_needed is not None
    assert f"about {inc.lookups_needed} lookups" in inc.sentence
    assert compare((0, 1000), (0, 1000)).outcome == "no-change"
    assert compare((0, 1000), (50, 1000)).outcome == "worse"
    assert compare((0, 0), (0, 10)).outcome == "no-data"
    # the stated confidence is used: a p-value of ~0.03 passes at 95 % but not at 99 %
    mid = compare((6, 100), (0, 100))
    assert 0.01 < mid.p_value < 0.05
    assert mid.outcome == "fixed"
    assert compare((6, 100), (0, 100), 0.99).outcome == "inconclusive"


def test_lookups_to_detect_is_minimal() -> None:
    n = lookups_to_detect(0.01, 0.95)
    assert (1 - 0.01) ** n <= 0.05 < (1 - 0.01) ** (n - 1)
    # rule of three: about 3 / rate at 95 %
    assert n == pytest.approx(3 / 0.01, rel=0.01)
    with pytest.raises(BadInput, match="rate"):
        lookups_to_detect(0.0)


@pytest.mark.parametrize("rate", [0.5, 0.078, 0.01, 0.001])
def test_lookups_to_show_fix_is_minimal(rate: float) -> None:
    n = lookups_to_show_fix(rate, 0.95)
    assert fisher_less(0, n, round(rate * n), n) < 0.05
    k_prev = round(rate * (n - 1))
    assert k_prev == 0 or fisher_less(0, n - 1, k_prev, n - 1) >= 0.05


def test_bucket_latencies() -> None:
    lat = [0.001, 0.1, 0.5, 1.0, 1.2, 2.6, 5.0, 5.006, 10.0, 12.0]
    edges = (0.1, 1.0, 2.5, 5.0, 10.0)
    counts = bucket_latencies(lat, edges)
    assert sum(counts) == len(lat)
    bounds = [0.0, *edges, float("inf")]
    assert counts == [sum(1 for x in lat if lo <= x < hi) for lo, hi in itertools.pairwise(bounds)]
    # one full 5 s resolver timeout is counted in the [5, 10) bucket
    assert bucket_latencies([5.006], edges)[4] == 1
    with pytest.raises(BadInput, match="edges"):
        bucket_latencies(lat, (1.0, 0.5))
