"""Merge the client pods' worker answers into one phase's ``load`` (what netns's one worker
returns for all pods at once). Pure.

- counts add up; rates and ratios are recomputed from the summed counts;
- ``elapsed_s`` is the longest pod's;
- ``timeline`` rows (``[t, n, ...]`` or ``{"t": ..}``) are added up second by second;
- ``latency_ms``: ``max`` is the maximum; the percentiles are the count-weighted mean of the
  pods' percentiles. That is exact for one pod and an approximation otherwise (the pods'
  samples are not shipped); :func:`merge_loads` says which in its notes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from loadgen.worker import WorkerResult

# ratio field -> (numerator candidates, denominator), recomputed after the counts are summed
RATIOS: dict[str, tuple[tuple[str, ...], str]] = {
    "timeout_rate": (("timeouts",), "lookups"),
    "failed_rate": (("failed",), "lookups"),
    "full_timeout_rate": (("full_timeout_waits",), "lookups"),
    "queries_per_lookup": (("queries_sent", "queries"), "lookups"),  # dns / dns.by_name.*
    "failure_rate": (("failures",), "requests"),
}
WEIGHTS = ("lookups", "requests")


def _num(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _merge_timeline(parts: Sequence[Any]) -> list[Any]:
    rows_by_t: dict[float, list[float]] = {}
    dict_rows: dict[float, dict[str, Any]] = {}
    for part in parts:
        for row in part or []:
            if isinstance(row, Mapping):
                tk = "t_s" if "t_s" in row else "t"  # the HTTP client's rows say t_s
                t = float(row.get(tk, 0.0))
                acc = dict_rows.setdefault(t, {tk: row.get(tk, 0.0)})
                for k, v in row.items():
                    if k != tk and _num(v):
                        acc[k] = acc.get(k, 0) + v
            else:
                t = float(row[0])
                cur = rows_by_t.setdefault(t, [row[0]] + [0] * (len(row) - 1))
                for i, v in enumerate(row[1:], start=1):
                    if i >= len(cur):
                        cur.append(0)
                    cur[i] += v
    if dict_rows:
        return [dict_rows[t] for t in sorted(dict_rows)]
    return [rows_by_t[t] for t in sorted(rows_by_t)]


def _merge_latency(parts: Sequence[Mapping[str, Any]], weights: Sequence[float]) -> dict[str, Any]:
    keys = list(dict.fromkeys(k for p in parts for k in p))
    total = sum(weights)
    out: dict[str, Any] = {}
    for k in keys:
        vals = [(p[k], w) for p, w in zip(parts, weights, strict=True) if _num(p.get(k))]
        if not vals:
            continue
        if k == "max" or total <= 0:
            out[k] = max(v for v, _ in vals)
        else:
            out[k] = round(sum(v * w for v, w in vals) / total, 3)
    return out


def _merge_section(parts: Sequence[Mapping[str, Any]], notes: list[str], where: str) -> Any:
    weight_key = next((w for w in WEIGHTS if all(w in p for p in parts)), None)
    weights = [float(p[weight_key]) for p in parts] if weight_key else [1.0] * len(parts)
    out: dict[str, Any] = {}
    for k in dict.fromkeys(k for p in parts for k in p):
        vals = [p[k] for p in parts if k in p]
        if k in RATIOS and _ratio_parts(k, parts):
            continue  # recomputed below
        if k.startswith("edges") and all(v == vals[0] for v in vals):
            out[k] = vals[0]  # histogram bucket edges: the same for every pod
        elif k == "timeline":
            out[k] = _merge_timeline(vals)
        elif k == "latency_ms" and all(isinstance(v, Mapping) for v in vals):
            out[k] = _merge_latency(vals, weights if len(vals) == len(parts) else [1.0] * len(vals))
        elif k == "elapsed_s" and all(_num(v) for v in vals):
            out[k] = max(vals)
        elif all(_num(v) for v in vals):
            out[k] = sum(vals)
        elif all(isinstance(v, Mapping) for v in vals):
            out[k] = _merge_section(vals, notes, f"{where}.{k}")
        elif all(_numeric_list(v) and len(v) == len(vals[0]) for v in vals):
            out[k] = [sum(col) for col in zip(*vals, strict=True)]  # histogram counts
        elif all(isinstance(v, list) for v in vals):
            out[k] = [x for v in vals for x in v]
        else:
            distinct = list(dict.fromkeys(str(v) for v in vals))
            out[k] = vals[0]
            if len(distinct) > 1:
                notes.append(f"{where}.{k} differs between pods: {distinct}")
    for k in RATIOS:
        found = _ratio_parts(k, parts)
        if any(k in p for p in parts) and found:
            num, den = found
            out[k] = round(out[num] / out[den], 6) if out[den] else 0.0
    return out


def _ratio_parts(key: str, parts: Sequence[Mapping[str, Any]]) -> tuple[str, str] | None:
    """The (numerator, denominator) fields every part has for this ratio, if any."""
    nums, den = RATIOS[key]
    for num in nums:
        if all(_num(p.get(num)) and _num(p.get(den)) for p in parts):
            return num, den
    return None


def _numeric_list(v: object) -> bool:
    return isinstance(v, list) and bool(v) and all(_num(x) for x in v)


def merge_loads(answers: Sequence[Mapping[str, Any]]) -> tuple[WorkerResult, list[str]]:
    """The pods' worker answers -> one worker result (``dns``, ``http``) and notes."""
    notes: list[str] = []
    merged: dict[str, Any] = {}
    for section in ("dns", "http"):
        parts = [a[section] for a in answers if a.get(section)]
        if not parts:
            continue
        merged[section] = _merge_section(parts, notes, section)
        if len(parts) > 1 and any(isinstance(p.get("latency_ms"), Mapping) for p in parts):
            notes.append(
                f"{section}.latency_ms percentiles are the count-weighted mean of "
                f"{len(parts)} pods' percentiles (max is exact)"
            )
    return cast(WorkerResult, merged), notes
