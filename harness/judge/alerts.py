"""Seed 000's alert, evaluated over a phase's sampled series (pure).

* :func:`near_full_fired`: the rule over one node's series::

      alert: ConntrackTableNearFull
      expr: node_nf_conntrack_entries / node_nf_conntrack_entries_limit > 0.9
      for: 5m

* :func:`scaled_for_s`: how ``for: 5m`` is scaled to a phase.

Scaling ``for: 5m``: in production the rule waits 5 minutes so that a blip does not page, i.e.
it asks the condition to hold for a quarter of a ~20-minute incident window. A phase lasts
seconds, not hours, so the harness keeps that *proportion*: ``for = 5 m * phase / 20 m``,
clamped to at least two sample intervals (one sample never makes a "for") and at most the real
5 minutes. A 20 s phase sampled every 0.5 s gets ``for: 5s``; a 2 h soak gets the real 5 m.
"""

from __future__ import annotations

from collections.abc import Sequence

from cthcommon.errors import BadInput
from harness.results.schema import AlertResult, PhaseResult

NEAR_FULL_ALERT = "ConntrackTableNearFull"
NEAR_FULL_EXPR = "node_nf_conntrack_entries / node_nf_conntrack_entries_limit > 0.9"
PRODUCTION_FOR_S = 300.0
PRODUCTION_WINDOW_S = 1200.0
DEFAULT_SAMPLE_INTERVAL_S = 0.5


def scaled_for_s(
    phase_duration_s: float, sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S
) -> float:
    """The alert's ``for`` for a phase of this length (see the module docstring)."""
    if phase_duration_s <= 0 or sample_interval_s <= 0:
        raise BadInput(
            "durations must be positive",
            field="phase_duration_s",
            value=(phase_duration_s, sample_interval_s),
        )
    scaled = PRODUCTION_FOR_S * phase_duration_s / PRODUCTION_WINDOW_S
    return min(PRODUCTION_FOR_S, max(2 * sample_interval_s, scaled))


def near_full_fired(
    timeline: Sequence[Sequence[float]],
    max: int,
    threshold: float = 0.9,
    for_s: float = 0.0,
) -> bool:
    """Would ``count / max > threshold`` with ``for: for_s`` have fired over these samples?

    Prometheus semantics on a sampled series: the rule is *pending* from the first sample that
    satisfies it and *fires* at a later sample that still satisfies it once ``for_s`` has passed
    since then; a sample that fails resets it. ``for_s == 0`` fires on the first such sample.
    ``timeline`` rows are ``[t_s, count, ...]`` in time order.
    """
    if max <= 0:
        raise BadInput("the table limit must be positive", field="max", value=max)
    pending_since: float | None = None
    for row in timeline:
        t, count = float(row[0]), float(row[1])
        if count / max > threshold:
            if pending_since is None:
                pending_since = t
            if t - pending_since >= for_s:
                return True
        else:
            pending_since = None
    return False


def evaluate_near_full(
    phase: PhaseResult, sample_interval_s: float = DEFAULT_SAMPLE_INTERVAL_S
) -> AlertResult:
    """Seed 000's alert over every node's series in one phase, with ``for`` scaled to it."""
    for_s = scaled_for_s(max(phase["duration_s"], sample_interval_s), sample_interval_s)
    fired_on: list[str] = []
    max_ratio = 0.0
    for node in phase["conntrack"]["nodes"]:
        limit = node["max"] or phase["conntrack"]["max"]
        if limit <= 0:
            continue
        if node["timeline"]:
            max_ratio = max(max_ratio, *(row[1] / limit for row in node["timeline"]))
        if near_full_fired(node["timeline"], limit, 0.9, for_s):
            fired_on.append(node["node"])
    return {
        "expr": NEAR_FULL_EXPR,
        "for_s": for_s,
        "fired": bool(fired_on),
        "nodes": fired_on,
        "max_ratio": round(max_ratio, 4),
    }
