"""``upstream_cold_build_s``: how long a fresh machine takes to build the default release's
upstream parts, read from what the builds recorded themselves (nothing is rebuilt here);
``upstream_kube_proxy_build_s``: how long one more release's kube-proxy alone takes (the Go
build cache warm from another release's build), read from its stamp.

In order of preference:

1. ``cold-builds.jsonl`` in the cache (:mod:`harness.upstream.coldbuild`): every
   ``conntrack-harness upstream build`` that built the release's parts from an empty cache
   (a fresh machine's ``make setup``/``make demo``) or with ``--cold`` (an empty Go build
   cache) appends its wall seconds, when it ran, what it built and the state of Go's caches;
   the latest that covers every part of the default release is the figure;
2. the ``cold_run`` records older ``--cold`` builds left in the components' ``.complete``
   stamps, added up;
3. for a cache built before either existed: each part's first install in its stamp, added
   up, labelled so (the Go caches' state then was not recorded).

A part the versions file marks ``blocked`` is left out and named.
"""

from __future__ import annotations

from typing import Any

from harness.upstream import (
    COMPONENT_BINARIES,
    Release,
    coldbuild,
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


def _needed(rel: Release) -> tuple[set[tuple[str, str]], set[str]]:
    blocked = {"node-cache"} if rel.node_cache_blocked else set()
    needed = {(c, b) for c, bins in COMPONENT_BINARIES.items() if c not in blocked for b in bins}
    return needed, blocked


def from_record(rel: Release, needed: set[tuple[str, str]]) -> tuple[float, dict[str, Any]] | None:
    rec = coldbuild.latest(rel.kubernetes, needed)
    if rec is None:
        return None
    detail: dict[str, Any] = {
        "how": f"`upstream build` recorded it ({coldbuild.RECORD_FILE} in the cache)",
        "trigger": rec.get("trigger"),
        "kubernetes": rel.kubernetes,
        "built_at": rec.get("finished"),
        "source": rec.get("source"),
        "parts": rec.get("parts"),
        "left_out": rec.get("left_out"),
        "cpus": rec.get("cpus"),
        "load_avg_1m": rec.get("load_avg_1m"),
        "go_build_cache": rec.get("go_build_cache"),
        "go_module_cache": rec.get("go_module_cache"),
    }
    return float(rec["wall_s"]), detail


def from_cold_runs(
    rel: Release, needed: set[tuple[str, str]]
) -> tuple[float, dict[str, Any]] | None:
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
                "how": "`upstream build --cold` runs in the stamps, added up",
                "kubernetes": rel.kubernetes,
                "cold_run": run_id,
                "built_at": max(str(r.get("finished", run_id)) for _, r in records),
                "parts": parts,
                "cpus": records[0][1].get("cpus"),
                "go_build_cache": "empty (private to the build: --cold)",
                "go_module_cache": "kept (downloads not timed)",
            }
            return sum(float(p["seconds"]) for p in parts), detail
    return None


def from_first_installs(
    rel: Release, needed: set[tuple[str, str]]
) -> tuple[float, dict[str, Any]] | None:
    """Each needed binary's first install in its component's stamp (one run may install
    several); None unless every one has one."""
    parts: list[dict[str, Any]] = []
    covered: set[tuple[str, str]] = set()
    for component in sorted({c for c, _ in needed}):
        stamp = read_stamp(component, rel.version_of(component)) or {}
        for r in stamp.get("runs") or []:
            if not isinstance(r, dict):
                continue
            new = {(component, str(b)) for b in r.get("binaries") or []} & needed - covered
            if new and "seconds" in r:
                covered |= new
                parts.append(
                    {
                        "component": component,
                        "version": rel.version_of(component),
                        "binaries": r.get("binaries"),
                        "source": r.get("source"),
                        "seconds": float(r["seconds"]),
                        "finished": r.get("finished"),
                        "load_avg_1m": r.get("load_avg_1m"),
                        "cpus": r.get("cpus"),
                    }
                )
    if not needed <= covered:
        return None
    detail: dict[str, Any] = {
        "how": "each part's first install in the stamps, added up (the cache predates the "
        "cold-build record; the Go caches' state then is unknown)",
        "kubernetes": rel.kubernetes,
        "built_at": max(str(p.get("finished")) for p in parts),
        "parts": parts,
        "cpus": next((p.get("cpus") for p in parts if p.get("cpus")), None),
    }
    return sum(float(p["seconds"]) for p in parts), detail


def measure(kubernetes: str | None = None) -> tuple[float | None, dict[str, Any]]:
    """(wall seconds of the latest recorded cold build or None, what was built, when, how)."""
    rel = release(kubernetes)
    needed, blocked = _needed(rel)
    for source in (from_record, from_cold_runs, from_first_installs):
        got = source(rel, needed)
        if got is not None:
            value, detail = got
            if blocked:
                detail["left_out_blocked"] = sorted(blocked)
            return value, detail
    return None, {
        "kubernetes": rel.kubernetes,
        "note": "no cold build recorded: the next `conntrack-harness upstream build` on an "
        "empty cache records one, or `upstream build --cold` (as root)",
        "needs": sorted(f"{c}/{b}" for c, b in needed),
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
    return float(last["seconds"]), {
        **last,
        "how": "its kube-proxy alone (`upstream build --component kube-proxy`, or a run's first "
        "use), the Go build cache warm from another release's build: the latest such build's "
        "wall seconds, from its stamp",
        "built_at": last["finished"],
        "go_build_cache": "warm (another release built)",
        "go_module_cache": "the shared one, kept; modules the release adds are fetched in the "
        "build's module step, which is timed",
    }
