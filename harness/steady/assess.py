"""When a phase was measured in its steady state (pure): :func:`assess` compares the model
(:mod:`harness.steady.model`) with the sampled table (when the count came within tolerance
of its level, and the lookups made from then on: the steady-state window), with batch-means
intervals over the window; plus the advice for an inconclusive phase, the comparison gate
and the sentence that describes a phase's steady state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from harness.steady.model import SteadyState

# two-sided 95 % Student t quantiles by degrees of freedom (1..30); 1.96 beyond
T95 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)
BATCH_S = 5  # seconds per batch: the GC's passes make the table (and lookups) a sawtooth
NOT_MODELLED = "not modelled: "  # how a reason starts when the model does not know the load
# A natural phase that reaches its steady state late is judged on the window after it only
# when that window is a fair sample of the steady state: at least a third of the phase, at
# least four batch-means batches, and (for a phase with DNS lookups) at least 100 lookups.
MIN_WINDOW_SHARE = 1 / 3
MIN_WINDOW_S = 4 * BATCH_S
MIN_WINDOW_LOOKUPS = 100


def batch_means_ci(
    rows: Sequence[Sequence[float]], batch_s: int = BATCH_S
) -> tuple[float, float, float, int]:
    """Timeout rate with a 95 % batch-means interval from ``[second, lookups, timeouts]``
    rows: ``(rate, low, high, batches)``. Lookups made while the table is full time out
    together, so they are not independent (a Wilson interval is too narrow); batches of
    ``batch_s`` seconds are. Fewer than two batches: the interval is [0, 1]."""
    batches: dict[int, list[float]] = {}
    for r in rows:
        b = batches.setdefault(int(r[0]) // batch_s, [0.0, 0.0])
        b[0] += r[1]
        b[1] += r[2]
    rates = [t / n for n, t in batches.values() if n > 0]
    lookups = sum(n for n, _ in batches.values())
    rate = sum(t for _, t in batches.values()) / lookups if lookups else 0.0
    k = len(rates)
    if k < 2:
        return rate, 0.0, 1.0, k
    mean = sum(rates) / k
    sd = math.sqrt(sum((x - mean) ** 2 for x in rates) / (k - 1))
    t = T95[k - 2] if k - 1 <= len(T95) else 1.96
    half = t * sd / math.sqrt(k)
    return rate, max(0.0, mean - half), min(1.0, mean + half), k


@dataclass(frozen=True)
class Assessment:
    """The model against the sampled table.

    ``steady_from_s``: seconds after the load started when the table first came within
    tolerance of the level (None: never); ``reached``: the phase's lookups describe the
    steady state, either all of them (it arrived within ``late_s``: ``judged_on`` "phase")
    or those of the window after it arrived, when that window is long enough
    (:func:`window_enough`: ``judged_on`` "window"). ``needed_s``: for a phase not
    reached, the shortest phase from a natural start that would be judged (None: reached,
    or no duration would do)."""

    level: float
    threshold: float
    steady_from_s: float | None
    reached: bool
    observed_mean: float  # the count's mean over the steady-state window (0: none)
    observed_peak: int
    lookups: int  # made in the steady-state window
    timeouts: int
    batch_ci: tuple[float, float]  # 95 % batch-means interval of the window's timeout rate
    batches: int
    reason: str
    notes: list[str] = field(default_factory=list)
    judged_on: Literal["phase", "window"] = "phase"
    needed_s: float | None = None


def first_at_or_above(
    timeline: Sequence[tuple[float, int]], threshold: float, start_s: float
) -> float | None:
    for t, c in timeline:
        if t >= start_s and c >= threshold:
            return t
    return None


def window_wanted_s(duration_s: float) -> float:
    """The shortest steady window a phase of ``duration_s`` is judged on."""
    return max(MIN_WINDOW_SHARE * duration_s, float(MIN_WINDOW_S))


def window_enough(duration_s: float, window_s: float, lookups: int, any_lookups: bool) -> bool:
    """Is the window after the table reached its steady state a fair sample of it: at least
    a third of the phase and ``MIN_WINDOW_S``, and ``MIN_WINDOW_LOOKUPS`` lookups when the
    phase made any."""
    return window_s >= window_wanted_s(duration_s) - 1e-9 and (
        not any_lookups or lookups >= MIN_WINDOW_LOOKUPS
    )


def needed_duration_s(steady_at_s: float, lookups_per_s: float) -> float:
    """The shortest phase whose window after ``steady_at_s`` is judged (:func:`window_enough`):
    D - T >= D / 3, D - T >= ``MIN_WINDOW_S`` and, with lookups, enough of them."""
    d = max(steady_at_s / (1.0 - MIN_WINDOW_SHARE), steady_at_s + MIN_WINDOW_S)
    if lookups_per_s > 0:
        d = max(d, steady_at_s + MIN_WINDOW_LOOKUPS / lookups_per_s)
    return float(math.ceil(d))


def assess(
    model: SteadyState,
    timeline: Sequence[tuple[float, int]],
    *,
    load_start_s: float,
    duration_s: float,
    dns_timeline: Sequence[Sequence[float]] = (),
    late_s: float | None = None,
    settle_s: float = 0.0,
) -> Assessment:
    """Did the phase measure in steady state?

    ``timeline``: the busiest node's ``(t, count)`` samples on the sampler's clock;
    ``load_start_s``: when the load began on that clock; ``dns_timeline``: the DNS result's
    ``[second since load start, lookups, timeouts]`` rows. ``late_s`` (default: 10 % of the
    phase, at least 1 s) is how long after the load started the table may arrive and the
    whole phase still count as measured in steady state; a later arrival is judged on the
    window after it when :func:`window_enough`. ``settle_s``: the earliest the steady
    state can hold: a load that started on an empty table turns over only once its first
    entries expire (the longest lifetime); after an aged warm-up, at once (0)."""
    allow = max(1.0, 0.1 * duration_s) if late_s is None else late_s
    hit = first_at_or_above(timeline, model.threshold, max(load_start_s, load_start_s + settle_s))
    if model.far_below_limit:  # the whole phase is the window
        hit = load_start_s
    steady_from = None if hit is None else round(max(0.0, hit - load_start_s), 3)
    window = [c for t, c in timeline if hit is not None and t >= hit]
    mean = sum(window) / len(window) if window else 0.0
    peak = max((c for _, c in timeline), default=0)
    rows = [r for r in dns_timeline if steady_from is not None and r[0] >= math.ceil(steady_from)]
    lookups = int(sum(r[1] for r in rows))
    timeouts = int(sum(r[2] for r in rows))
    all_lookups = int(sum(r[1] for r in dns_timeline))
    _, b_low, b_high, batches = batch_means_ci(rows)
    level = f"{model.level:,.0f} of max {model.table_max:,}"
    if model.unknown is not None:
        full = first_at_or_above(timeline, (1.0 - model.tolerance) * model.table_max, load_start_s)
        seen = (
            f"the table was full from {full - load_start_s:.1f} s"
            if full is not None
            else f"it peaked at {peak:,} of max {model.table_max:,}"
        )
        return Assessment(
            level=model.level,
            threshold=model.threshold,
            steady_from_s=None,
            reached=False,
            observed_mean=round(sum(c for _, c in timeline) / len(timeline), 1)
            if timeline
            else 0.0,
            observed_peak=peak,
            lookups=0,
            timeouts=0,
            batch_ci=(0.0, 1.0),
            batches=0,
            reason=(
                f"{NOT_MODELLED}{model.unknown}, and the kernel's counters gave no rates to "
                f"model it from; so no warm-up, the phase started on an empty table ({seen})"
            ),
        )
    judged_on: Literal["phase", "window"] = "phase"
    # from a natural start the table is steady no earlier than settle_s, nor before it fills
    steady_at = max(settle_s, model.time_to(model.threshold), steady_from or 0.0)
    needed: float | None = needed_duration_s(steady_at, all_lookups / duration_s)
    if not math.isfinite(steady_at):
        needed = None
    if model.far_below_limit:
        reached = True
        reason = (
            f"the steady state ({model.occupancy:,.0f} entries, {model.ratio:.0%} of max "
            f"{model.table_max:,}) is far below the limit: the table's fill cannot decide "
            "this phase"
        )
    elif (
        steady_from is None
        and (full := first_at_or_above(timeline, model.threshold, load_start_s)) is not None
    ):
        reached = False
        reason = (
            f"the table filled ({level}) {full - load_start_s:.1f} s into the load, but from "
            f"a natural start it turns over only once its first entries expire, "
            f"{settle_s:.0f} s after the load began; the phase lasted {duration_s:.0f} s, so "
            "it measured a table still filling with entries none of which could expire, not "
            "the steady state (no aged warm-up)"
        )
    elif steady_from is None:
        reached = False
        reason = (
            f"the table never reached its steady state: it peaked at {peak:,} entries, "
            f"below {model.threshold:,.0f} (within {model.tolerance:.0%} of the expected "
            f"{level}); a natural load needs about {model.time_to_steady_s:.0f} s to get "
            f"there, the phase lasted {duration_s:.0f} s"
        )
    elif steady_from > allow:
        window_s = duration_s - steady_from
        if window_enough(duration_s, window_s, lookups, all_lookups > 0):
            reached = True
            judged_on = "window"
            reason = (
                f"in steady state from {steady_from:.1f} s after the load started ({level}); "
                f"judged on the {window_s:.0f} s after that ({lookups:,} lookups), not on "
                "the lookups made while the table was still filling"
            )
        else:
            reached = False
            reason = (
                f"the table reached its steady state ({level}) only {steady_from:.1f} s into "
                f"a {duration_s:.0f} s phase, leaving {window_s:.0f} s ({lookups:,} lookups) "
                f"in it: too short to judge (at least {window_wanted_s(duration_s):.0f} s, a "
                f"third of the phase and {MIN_WINDOW_S} s"
                + (f", and {MIN_WINDOW_LOOKUPS} lookups)" if all_lookups else ")")
            )
    else:
        reached = True
        reason = f"in steady state from {steady_from:.1f} s after the load started ({level})"
    return Assessment(
        level=model.level,
        threshold=model.threshold,
        steady_from_s=steady_from,
        reached=reached,
        observed_mean=round(mean, 1),
        observed_peak=peak,
        lookups=lookups,
        timeouts=timeouts,
        batch_ci=(round(b_low, 6), round(b_high, 6)),
        batches=batches,
        reason=reason,
        judged_on=judged_on,
        needed_s=None if reached else needed,
    )


def conclusive_advice(needed_s: float | None, *, aged: bool, can_warm_up: bool) -> str:
    """What would make a phase that was not measured in steady state conclusive."""
    if needed_s is None:
        return (
            "no phase length would: the load never brings the table to its steady state; "
            "check the model's flows against the table"
        )
    run = f"a phase of at least {needed_s:.0f} s (load.duration_s)"
    if aged:
        return f"{run}; the aged warm-up did not bring the table to its steady state"
    if can_warm_up:
        return (
            f"{run}, or the aged warm-up (load.warmup: aged, which starts the phase in its "
            "steady state on a backend that has it)"
        )
    return f"{run} (no warm-up is possible: the load is known only once it ran)"


def describe(ss: Mapping[str, object]) -> str:
    """One sentence for reports: a phase's ``steady_state`` from result.json (pure)."""

    def num(key: str) -> float:
        v = ss.get(key)
        return float(v) if isinstance(v, int | float) else 0.0

    head = "steady state" if ss.get("reached") else "NOT in steady state (inconclusive)"
    reason = str(ss.get("reason", ""))
    if reason.startswith(NOT_MODELLED):  # no expected occupancy to compare with
        return (
            f"{head}: the table averaged {num('observed_mean'):,.0f} "
            f"({num('observed_vs_max'):.0%} of max {num('max'):,.0f}). No warm-up. "
            f"{reason[:1].upper()}{reason[1:]}."
        )
    t = ss.get("time_to_steady_s")
    when = (
        f"reached {float(t):.1f} s after the load started"
        if isinstance(t, int | float)
        else ("never reached")
    )
    text = (
        f"{head}: the load holds {num('expected_occupancy'):,.0f} entries "
        f"({num('occupancy_vs_max'):.2f} x max {num('max'):,.0f}); the table averaged "
        f"{num('observed_mean'):,.0f} ({num('observed_vs_max'):.0%} of max), {when}; a "
        f"natural load needs {num('natural_time_to_steady_s'):.0f} s"
    )
    w = ss.get("warmup")
    if isinstance(w, Mapping) and w.get("method") == "aged-fill":
        flows = w.get("flows")
        opened = ", ".join(
            f"{f.get('opened')} {f.get('kind')}"
            for f in (flows if isinstance(flows, list) else [])
            if isinstance(f, Mapping)
        )
        text += f". Warm-up (aged fill, not measured): {opened} entries"
    elif isinstance(w, Mapping):
        text += ". No warm-up"
    basis = ss.get("model_basis")
    if isinstance(basis, str):
        text += f". Modelled from {basis}"
    text += f". {reason[:1].upper()}{reason[1:]}."
    advice = ss.get("advice")
    if not ss.get("reached") and isinstance(advice, str):
        text += f" To make it conclusive: {advice}."
    return text
