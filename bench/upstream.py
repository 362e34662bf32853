"""``upstream_cold_build_s``: how long a fresh machine takes to build the default release's
upstream parts from source, read from the cache's stamps; ``upstream_kube_proxy_build_s``: how
long one more release's kube-proxy alone takes (the Go build cache warm from another release's
build), read the same way.

A cold build is too long to repeat on every bench run, so it is measured once, by
``conntrack-harness upstream build --cold`` (one empty Go build cache for the whole run, the
Go module cache kept: downloads are not timed), which records each task's wall seconds in
its component's ``.complete`` stamp under one ``cold_run`` id. This reads the latest cold run
that covers every part of the default release (a part the versions file marks ``blocked`` is
left out and named) and adds its tasks up.
"""

from __future__ import annotations

from typing import Any

from harness.upstream import (
    COMPONENT_BINARIES,
    Release,
    default_version,
    read_stamp,
    release,
    releases,
)


def cold_runs(rel: Release) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """cold_run id -> [(component, run record)] over the release's stamps."""
    out: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for component in COMPONENT_BINARIES:
        stamp = read_stamp(component, rel.version_of(component)) or {}
        for r in stamp.get("runs") or []:
            if isinstance(r, dict) and r.get("cold_run"):
                out.setdefault(str(r["cold_run"]), []).append((component, r))
    return out


def measure(kubernetes: str | None = None) -> tuple[float | None, dict[str, Any]]:
    """(total wall seconds of the latest complete cold run or None, per-part detail)."""
    rel = release(kubernetes)
    blocked = {"node-cache"} if rel.node_cache_blocked else set()
    needed = {(c, b) for c, bins in COMPONENT_BINARIES.items() if c not in blocked for b in bins}
    for run_id, records in sorted(cold_runs(rel).items(), reverse=True):
        covered = {(c, b) for c, r in records for b in r.get("binaries", [])}
        if needed <= covered:
            parts = [
                {
                    "component": c,
                    "version": rel.version_of(c),
                    "binaries": r["binaries"],
                    "seconds": float(r["seconds"]),
                    "load_avg_1m": r.get("load_avg_1m"),
                }
                for c, r in records
            ]
            detail: dict[str, Any] = {
                "kubernetes": rel.kubernetes,
                "cold_run": run_id,
                "parts": parts,
                "cpus": records[0][1].get("cpus"),
                "go_module_cache": "warm (downloads not timed)",
            }
            if blocked:
                detail["left_out_blocked"] = sorted(blocked)
            return sum(float(p["seconds"]) for p in parts), detail
    missing = sorted(f"{c}/{b}" for c, b in needed)
    return None, {
        "kubernetes": rel.kubernetes,
        "note": "no complete cold build recorded: run "
        "`conntrack-harness upstream build --cold` (as root)",
        "needs": missing,
    }


def kube_proxy_builds() -> list[dict[str, Any]]:
    """Every recorded build of a release's kube-proxy alone (``upstream build --kubernetes V
    --component kube-proxy``, or a run's first use that needed only it), oldest first."""
    out = []
    for ver in sorted(releases()):
        for r in (read_stamp("kubernetes", ver) or {}).get("runs") or []:
            if isinstance(r, dict) and r.get("binaries") == ["kube-proxy"]:
                out.append(
                    {
                        "kubernetes": ver,
                        "seconds": float(r["seconds"]),
                        "cold": bool(r.get("cold")),
                        "load_avg_1m": r.get("load_avg_1m"),
                        "cpus": r.get("cpus"),
                        "finished": r.get("finished"),
                    }
                )
    return sorted(out, key=lambda b: str(b["finished"]))


def measure_kube_proxy() -> tuple[float | None, dict[str, Any]]:
    """(seconds of the latest warm kube-proxy-only build of a release other than the default,
    or None, detail)."""
    warm = [
        b for b in kube_proxy_builds() if not b["cold"] and b["kubernetes"] != default_version()
    ]
    if not warm:
        return None, {
            "note": "no kube-proxy-only build recorded: run `conntrack-harness upstream build "
            "--kubernetes V --component kube-proxy` for a release other than the default"
        }
    last = warm[-1]
    return float(last["seconds"]), {**last, "go_build_cache": "warm (another release built)"}
