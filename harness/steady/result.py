"""``steady_state`` of result.json from a phase's model and its measured timelines (pure).

Every backend builds it the same way; only how the table got there differs (the netns
backend's aged warm-up, or a natural start), and that is added as ``warmup``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cthcommon.stats import wilson
from harness.kernel.sampler import NodeSeries
from harness.results.schema import SteadyStateResult
from harness.steady.assess import assess, conclusive_advice
from harness.steady.model import SteadyState, observed_model


def steady_result(
    model: SteadyState,
    series: Mapping[str, NodeSeries],
    *,
    load_start_s: float,
    duration_s: float,
    dns_timeline: Sequence[Sequence[float]],
    aged: bool,
    natural: str = "natural: no warm-up",
) -> SteadyStateResult:
    """Was the phase measured in steady state? Judged on the busiest node's count.

    ``aged``: an aged warm-up brought the table there, so the steady state can hold from the
    load's start; otherwise the load started on an empty table and turns over only once its
    longest-lived entries expire, and ``warmup`` records that natural start (``natural``: its
    label). After an aged warm-up the caller adds its own ``warmup`` report."""
    busiest = max(series.values(), key=lambda s: s.peak, default=None)
    can_warm_up = model.unknown is None
    if model.unknown is not None and busiest is not None:
        rates = load_rates(busiest, load_start_s=load_start_s, duration_s=duration_s)
        if rates is not None:
            model = observed_model(
                model,
                inserted_per_s=rates[0],
                refused_per_s=rates[1],
                states=busiest.states_at_peak,
                where=busiest.node,
            )
    a = assess(
        model,
        busiest.timeline if busiest else [],
        load_start_s=load_start_s,
        duration_s=duration_s,
        dns_timeline=dns_timeline,
        settle_s=0.0 if aged else model.longest_lifetime_s,
    )
    lo, hi = wilson(a.timeouts, a.lookups)
    result = SteadyStateResult(
        verdict="steady" if a.reached else "inconclusive",
        reached=a.reached,
        reason=a.reason,
        max=model.table_max,
        expected_occupancy=round(model.occupancy, 1),
        level=round(model.level, 1),
        occupancy_vs_max=round(model.ratio, 4),
        observed_mean=a.observed_mean,
        observed_vs_max=round(a.observed_mean / model.table_max, 4),
        node=busiest.node if busiest else "",
        time_to_steady_s=a.steady_from_s,
        natural_time_to_steady_s=round(model.time_to_steady_s, 2),
        flows=[
            {
                "kind": f.kind,
                "rate": round(f.rate, 2),
                "lifetime_s": f.lifetime_s,
                "fixed": f.fixed,
                "occupancy": round(f.occupancy, 1),
            }
            for f in model.flows
        ],
        window={
            "lookups": a.lookups,
            "timeouts": a.timeouts,
            "timeout_rate": round(a.timeouts / a.lookups, 6) if a.lookups else 0.0,
            "low": round(lo, 6),
            "high": round(hi, 6),
            "batch_low": a.batch_ci[0],
            "batch_high": a.batch_ci[1],
            "batches": a.batches,
        },
    )
    result["judged_on"] = a.judged_on
    if model.basis is not None:
        result["model_basis"] = model.basis
    if not a.reached:
        result["needed_duration_s"] = a.needed_s
        result["advice"] = conclusive_advice(a.needed_s, aged=aged, can_warm_up=can_warm_up)
    if not aged:
        result["warmup"] = {"method": "none", "label": natural}
    return result


def load_rates(
    s: NodeSeries, *, load_start_s: float, duration_s: float
) -> tuple[float, float] | None:
    """New entries the node's table inserted per second while the load ran, and new flows
    it refused per second (the stat counters ``insert`` and ``drop``), from the sampler's
    stat samples nearest the load's start and end (None: fewer than two samples in it)."""
    inside = [
        (t, st)
        for t, st in s.stat_timeline
        if load_start_s - 0.5 <= t <= load_start_s + duration_s + 0.5
    ]
    if len(inside) < 2:
        return None
    (t0, a), (t1, b) = inside[0], inside[-1]
    if t1 - t0 < 1.0:
        return None
    span = t1 - t0
    return (
        max(0, b.get("insert", 0) - a.get("insert", 0)) / span,
        max(0, b.get("drop", 0) - a.get("drop", 0)) / span,
    )
