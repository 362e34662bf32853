"""``steady_state`` of result.json from a phase's model and its measured timelines (pure).

Every backend builds it the same way; only how the table got there differs (the netns
backend's aged warm-up, or a natural start), and that is added as ``warmup``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.kernel.sampler import NodeSeries
from harness.results.schema import SteadyStateResult
from harness.stats import wilson
from harness.steady_state import SteadyState, assess


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
    if not aged:
        result["warmup"] = {"method": "none", "label": natural}
    return result
