"""A phase's ``fault`` section, from the race-window table's named counters before and after
the phase, summed over the nodes (pure). Every backend reads them the same way
(:func:`harness.dataplane.faults.named_counters`); where they could not be read (an existing
cluster's nodes) they are empty and ``hits`` is 0, which the backend says in ``unavailable``.
"""

from __future__ import annotations

from collections.abc import Mapping

from harness.dataplane.faults import ANSWERED, HITS, OPEN
from harness.plan.types import RaceFaultPlan
from harness.results.schema import FaultResult


def fault_result(
    fault: RaceFaultPlan,
    before: Mapping[str, int],
    after: Mapping[str, int],
    *,
    pinned_cpus: bool,
) -> FaultResult:
    """``hits`` always; ``window_open`` and ``answered_first`` where their counters were
    read."""
    out = FaultResult(
        kind="race-window",
        injected=fault.injected,
        probability=fault.probability,
        hits=after.get(HITS, 0) - before.get(HITS, 0),
        pinned_cpus=pinned_cpus,
    )
    if OPEN in after:
        out["window_open"] = after[OPEN] - before.get(OPEN, 0)
    if ANSWERED in after:
        out["answered_first"] = after[ANSWERED] - before.get(ANSWERED, 0)
    return out
