"""The shape of a result.json: every key path in it, for comparing backends (issue 18: every
result.json has the same shape on every backend, or says where it cannot).

A path is dotted from the document's root; a list's elements share ``[]``. Maps whose keys are
data rather than schema (lookup names, conntrack states, pods, components, the ``unavailable``
reasons, the outcomes that occurred) end the path: their keys differ with the run, not the
backend."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DATA_KEYED = frozenset(
    {
        "by_name",  # the names looked up
        "states_at_peak",  # conntrack states seen
        "remaining_lifetimes_at_load_s",  # the flow kinds the warm-up's entries had
        "outcomes",  # the lookups' outcomes that occurred
        "per_pod",
        "components",
        "unavailable",
    }
)

# what a phase's ``unavailable`` key says is missing from its result, as path prefixes
UNAVAILABLE_PATHS: Mapping[str, tuple[str, ...]] = {
    "server_counters": (".phases[].server.per_pod", ".phases[].server.upstream_received"),
    "kube_proxy": (".phases[].kube_proxy",),
    "node_dns_counters": (".phases[].node",),  # the node's DNS/statsd packet counters
}


def shape(doc: Any, path: str = "") -> set[str]:
    out: set[str] = set()
    if isinstance(doc, dict):
        for key, value in doc.items():
            here = f"{path}.{key}"
            out.add(here)
            if key not in DATA_KEYED:
                out |= shape(value, here)
    elif isinstance(doc, list):
        for value in doc:
            out |= shape(value, path + "[]")
    return out


def _explained(missing: str, result: Mapping[str, Any]) -> bool:
    """Is ``missing`` (a path absent from ``result``) named by one of its phases' reasons?"""
    said = {k for p in result.get("phases", []) for k in p.get("unavailable", {})}
    return any(
        missing == prefix or missing.startswith(prefix + ".") or missing.startswith(prefix + "[")
        for key in said
        for prefix in UNAVAILABLE_PATHS.get(key, ())
    )


def unexplained_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, list[str]]:
    """The paths one result has and the other lacks without saying why (empty: same shape)."""
    sa, sb = shape(a), shape(b)
    out = {
        "only in the first": sorted(p for p in sa - sb if not _explained(p, b)),
        "only in the second": sorted(p for p in sb - sa if not _explained(p, a)),
    }
    return {k: v for k, v in out.items() if v}
