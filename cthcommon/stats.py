"""Statistics behind every verdict: Wilson intervals, a one-sided Fisher exact test, sample sizes.

Pure and dependency-free (no scipy). Probabilities that underflow a float are carried as
``log10`` so that "312/4000 -> 0/4000" still gets an exact, printable p-value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal, NamedTuple

from cthcommon.errors import BadInput

DEFAULT_CONFIDENCE = 0.95
# Latency buckets that match resolver behaviour: timeout:1, musl's 2.5 s retry, glibc's 5 s.
LATENCY_EDGES_S: tuple[float, ...] = (0.1, 1.0, 2.5, 5.0, 10.0)


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise BadInput(
            "confidence must lie strictly between 0 and 1", field="confidence", value=confidence
        )


def _check_counts(k: int, n: int, field: str) -> None:
    if n < 0 or k < 0 or k > n:
        raise BadInput("need 0 <= events <= trials", field=field, value=f"{k}/{n}")


def z_two_sided(confidence: float) -> float:
    """The normal quantile for a two-sided interval: 1.959964 for 0.95."""
    _check_confidence(confidence)
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(k: int, n: int, confidence: float = DEFAULT_CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for ``k`` events in ``n`` trials.

    R: ``prop.test(k, n, correct=FALSE)$conf.int``.

    ``n == 0`` carries no information and returns ``(0.0, 1.0)``.
    """
    _check_counts(k, n, "wilson")
    z = z_two_sided(confidence)
    if n == 0:
        return 0.0, 1.0
    p = k / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return low, high


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return -math.inf
    return top + math.log(math.fsum(math.exp(v - top) for v in values))


def log_fisher_less(k_after: int, n_after: int, k_before: int, n_before: int) -> float:
    """Natural log of :func:`fisher_less`; finite even where the p-value underflows a float."""
    _check_counts(k_after, n_after, "after")
    _check_counts(k_before, n_before, "before")
    total = n_after + n_before
    events = k_after + k_before
    if total == 0 or events == 0:
        return 0.0
    # X = events that fall in the "after" row, hypergeometric with margins fixed.
    lo = max(0, events - n_before)
    log_denominator = _log_comb(total, events)
    terms = [
        _log_comb(n_after, x) + _log_comb(n_before, events - x) - log_denominator
        for x in range(lo, k_after + 1)
    ]
    return min(0.0, _logsumexp(terms))


def fisher_less(k_after: int, n_after: int, k_before: int, n_before: int) -> float:
    """One-sided Fisher exact p-value that the "after" rate is lower than the "before" rate.

    It is ``P(X <= k_after)`` for ``X`` hypergeometric with the table's margins; R's
    ``fisher.test(matrix(c(k_after, n_after - k_after, k_before, n_before - k_before), 2,
    byrow=TRUE), alternative="less")``.
    """
    return math.exp(log_fisher_less(k_after, n_after, k_before, n_before))


class Counts(NamedTuple):
    """``events`` out of ``trials`` (e.g. timed-out lookups out of all lookups)."""

    events: int
    trials: int

    @property
    def rate(self) -> float:
        return self.events / self.trials if self.trials else 0.0


Outcome = Literal["fixed", "improved", "inconclusive", "no-change", "worse", "no-data"]


@dataclass(frozen=True)
class Comparison:
    """The verdict on "did the remediation lower the rate?", with how sure it is."""

    before: Counts
    after: Counts
    before_ci: tuple[float, float]
    after_ci: tuple[float, float]
    p_value: float  # one-sided, H1: rate after < rate before
    log10_p: float
    confidence: float
    outcome: Outcome
    lookups_needed: int | None  # per phase, to show a fix at this confidence; None if n/a
    sentence: str

    @property
    def significant(self) -> bool:
        return self.outcome in ("fixed", "improved")


def format_p(log10_p: float) -> str:
    """``p = 0.031``, ``p = 2.4e-05``, or ``p < 1e-90`` for the vanishingly small."""
    if log10_p < -30:
        return f"p < 1e{math.floor(log10_p) + 1}"
    p = 10**log10_p
    if p >= 0.001:
        return f"p = {p:.3f}"
    return f"p = {p:.1e}"


def pct(x: float) -> str:
    """A rate for people: 0%, 0.052%, 7.8%, 73%."""
    if x == 0:
        return "0%"
    if x >= 0.1:
        return f"{x * 100:.0f}%"
    if x >= 0.01:
        return f"{x * 100:.1f}%"
    return f"{x * 100:.2g}%"


def lookups_to_detect(rate: float, confidence: float = DEFAULT_CONFIDENCE) -> int:
    """Trials needed so that a true rate of ``rate`` shows at least one event with ``confidence``.

    Solves ``(1 - rate) ** n <= 1 - confidence``: the converse of the rule of three. Seeing 0
    events in that many trials is then evidence at ``confidence`` that the rate is below ``rate``.
    """
    _check_confidence(confidence)
    if not 0.0 < rate < 1.0:
        raise BadInput("rate must lie strictly between 0 and 1", field="rate", value=rate)
    return math.ceil(math.log(1 - confidence) / math.log1p(-rate))


def lookups_to_show_fix(rate_before: float, confidence: float = DEFAULT_CONFIDENCE) -> int:
    """Lookups per phase so that ``rate_before`` -> 0 gives Fisher ``p < 1 - confidence``.

    With ``n`` lookups in each phase and ``k = round(rate_before * n)`` timeouts before, the
    smallest ``n`` for which :func:`fisher_less` ``(0, n, k, n)`` falls below ``1 - confidence``.
    For rare events run repeats until the phases together reach this many lookups.
    """
    _check_confidence(confidence)
    if not 0.0 < rate_before <= 1.0:
        raise BadInput("rate must lie in (0, 1]", field="rate_before", value=rate_before)
    alpha_log = math.log(1 - confidence)

    def ok(n: int) -> bool:
        k = round(rate_before * n)
        return k > 0 and log_fisher_less(0, n, k, n) < alpha_log

    hi = max(2, lookups_to_detect(min(rate_before, 0.999999), confidence))
    while not ok(hi):
        hi *= 2
    lo = 1
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def compare(
    before: Counts | tuple[int, int],
    after: Counts | tuple[int, int],
    confidence: float = DEFAULT_CONFIDENCE,
    *,
    what: str = "timeouts",
) -> Comparison:
    """Test before vs after (one-sided Fisher exact) and say, in one sentence, how sure it is.

    Outcomes: ``fixed`` (after is 0 and the drop is significant), ``improved`` (significant
    drop, not to 0), ``worse`` (significant rise), ``no-change`` (both 0), ``inconclusive``
    (too few events to tell; the sentence says how many lookups would be), ``no-data``.
    """
    _check_confidence(confidence)
    b, a = Counts(*before), Counts(*after)
    _check_counts(b.events, b.trials, "before")
    _check_counts(a.events, a.trials, "after")
    alpha = 1 - confidence
    sure = f"{confidence * 100:g}% sure"
    b_ci, a_ci = wilson(*b, confidence), wilson(*a, confidence)
    ln_p = log_fisher_less(a.events, a.trials, b.events, b.trials)
    log10_p = ln_p / math.log(10)
    p = math.exp(ln_p)
    head = f"{b.events}/{b.trials} -> {a.events}/{a.trials}"
    needed: int | None = None

    if a.trials == 0 or b.trials == 0:
        outcome: Outcome = "no-data"
        sentence = f"no data: {head} {what}; a phase made no lookups"
    elif a.events == 0 and b.events == 0:
        outcome = "no-change"
        sentence = (
            f"no change: {head} {what}; nothing to fix at this load (rate below "
            f"{pct(b_ci[1])} before, {sure})"
        )
    elif p < alpha:
        outcome = "fixed" if a.events == 0 else "improved"
        sentence = (
            f"{outcome}: {head} {what} ({pct(b.rate)} -> {pct(a.rate)}, after "
            f"at most {pct(a_ci[1])}), {format_p(log10_p)}, {sure}"
        )
    elif log_fisher_less(b.events, b.trials, a.events, a.trials) < math.log(alpha):
        outcome = "worse"
        p_worse = log_fisher_less(b.events, b.trials, a.events, a.trials) / math.log(10)
        sentence = (
            f"worse: {head} {what} ({pct(b.rate)} -> {pct(a.rate)}), {format_p(p_worse)}, {sure}"
        )
    else:
        outcome = "inconclusive"
        if b.events > 0:
            needed = lookups_to_show_fix(max(b.rate, 1 / b.trials), confidence)
            hint = f"; about {needed} lookups per phase (add repeats) would settle it"
        else:
            hint = "; the baseline never timed out, so there is nothing to compare"
        sentence = (
            f"inconclusive: {head} {what}, {format_p(log10_p)}: not {sure} the rate fell{hint}"
        )
    return Comparison(b, a, b_ci, a_ci, p, log10_p, confidence, outcome, needed, sentence)


def bucket_latencies(
    latencies_s: Sequence[float], edges_s: Sequence[float] = LATENCY_EDGES_S
) -> list[int]:
    """Counts per bucket ``[0, e0), [e0, e1), ..., [e_last, inf)``; ``len(edges) + 1`` counts.

    Left-closed, so a lookup that waited exactly one 5 s resolver timeout (5.006 s) lands in
    the ``[5, 10)`` bucket, the one that stands for "one full timeout".
    """
    if list(edges_s) != sorted(set(edges_s)):
        raise BadInput(
            "bucket edges must be strictly increasing", field="edges_s", value=list(edges_s)
        )
    counts = [0] * (len(edges_s) + 1)
    for x in latencies_s:
        i = 0
        while i < len(edges_s) and x >= edges_s[i]:
            i += 1
        counts[i] += 1
    return counts
