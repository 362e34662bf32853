"""``conntrack-harness upstream build|list``: fill and show the cache of pinned upstream parts.

The main CLI adds these with :func:`add_parser`; each handler returns the exit code.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from typing import Any

from harness.upstream import (
    BINARY_COMPONENT,
    COMPONENT_BINARIES,
    Release,
    coldbuild,
    component_dir,
    default_version,
    gobuild,
    installed,
    release,
    releases,
)
from harness.upstream import build as builder
from harness.upstream.cache import sha256_of


def _say(line: str) -> None:
    print(f"upstream: {line}", flush=True)


def _releases(names: list[str] | None) -> list[Release]:
    if names and "all" in names:
        return list(releases().values())
    return [release(n) for n in (names or [default_version()])]


def cmd_build(args: argparse.Namespace) -> int:
    rels = _releases(args.kubernetes)
    wanted, notes = builder.without_blocked(rels, builder.selection(args.component), args.component)
    for note in notes:
        _say(note)
    again = args.rebuild or args.cold
    tasks = builder.plan(rels, wanted, lambda c, v, b: not again and not builder.missing(c, v, b))
    if not tasks:
        _say(f"everything is in the cache ({', '.join(r.kubernetes for r in rels)})")
        return 0
    # nothing of what was asked for is in the cache: a fresh machine's build, worth recording
    from_empty = not builder.plan(rels, wanted, builder.missing)
    before = _cold_start(args.cold) if (from_empty or args.cold) else None
    t0 = time.monotonic()
    outcomes = builder.run(
        tasks,
        args.source,
        mirror=args.mirror,
        cold=args.cold,
        rebuild=args.rebuild or args.cold,
        say=_say,
    )
    wall = time.monotonic() - t0
    done = sum(1 for o in outcomes if o.status == "installed")
    _say(f"{done} of {len(tasks)} built in {wall:.1f} s")
    if before is not None:
        _record_cold(
            args, rels, tasks=tasks, outcomes=outcomes, before=before, wall=wall, notes=notes
        )
    for o in outcomes:
        if o.status == "blocked":
            _say(
                f"BLOCKED {o.task.component} {o.task.version}: {o.task.release.node_cache_blocked}"
            )
    builder.check(outcomes)
    return 0


def _cold_start(cold: bool) -> dict[str, Any]:
    """What a cold build's record needs from before it starts: time, load, Go's caches."""
    caches = (
        {"go_build_cache": "empty (private to this build: --cold)", "go_module_cache": "kept"}
        if cold
        else coldbuild.go_cache_states(gobuild.go_env())
    )
    return {
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "load": os.getloadavg()[0],
        "caches": caches,
    }


def _record_cold(
    args: argparse.Namespace,
    rels: list[Release],
    *,
    tasks: list[builder.Task],
    outcomes: list[builder.Outcome],
    before: dict[str, Any],
    wall: float,
    notes: list[str],
) -> None:
    """Append the cold build's record when every planned part was built by this run (not by
    another builder meanwhile, not failed); a blocked part is named as left out."""
    built = [o for o in outcomes if o.status == "installed"]
    blocked = [o for o in outcomes if o.status == "blocked"]
    planned = {(t.component, t.version, b) for t in tasks for b in t.binaries}
    done = {(o.task.component, o.task.version, b) for o in built + blocked for b in o.task.binaries}
    if planned - done or not built:  # failed, or another builder installed some
        return
    parts = [
        {
            "component": o.task.component,
            "version": o.task.version,
            "binaries": list(o.task.binaries),
            "source": (installed(o.task.component, o.task.version, o.task.binaries[0]) or {}).get(
                "source", "?"
            ),
            "seconds": round(o.seconds, 1),
        }
        for o in built
    ]
    rec = coldbuild.build_record(
        trigger="--cold" if args.cold else "empty cache",
        kubernetes=[r.kubernetes for r in rels],
        source=args.source,
        started=before["started"],
        finished=datetime.now(UTC).isoformat(timespec="seconds"),
        wall_s=wall,
        parts=parts,
        left_out=[
            *(f"{o.task.component} {o.task.version} (blocked)" for o in blocked),
            *(n.split(":")[0] + " (blocked, not tried)" for n in notes),
        ],
        cpus=os.cpu_count(),
        load_avg_1m=(before["load"], os.getloadavg()[0]),
        go_caches=before["caches"],
    )
    path = coldbuild.append(rec)
    _say(f"cold build recorded ({rec['trigger']}, {rec['wall_s']:.1f} s) in {path}")


def rows(rels: list[Release], verify: bool = False) -> list[dict[str, Any]]:
    """One row per binary of each release: version, source, path, state."""
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for rel in rels:
        for component, binaries in COMPONENT_BINARIES.items():
            version = rel.version_of(component)
            for b in binaries:
                if (b, version) in seen:
                    continue
                seen.add((b, version))
                entry = installed(component, version, b)
                path = component_dir(component, version) / b
                if entry is None:
                    blocked = component == "node-cache" and rel.node_cache_blocked
                    state = "blocked" if blocked else "missing"
                elif verify and sha256_of(path) != entry.get("sha256"):
                    state = "CORRUPT"
                else:
                    state = "present"
                out.append(
                    {
                        "kubernetes": rel.kubernetes,
                        "component": component,
                        "binary": b,
                        "version": version,
                        "source": (entry or {}).get("source", "-"),
                        "origin": (entry or {}).get("origin", ""),
                        "state": state,
                        "path": str(path),
                    }
                )
    return out


def cmd_list(args: argparse.Namespace) -> int:
    table = rows(_releases(args.kubernetes or ["all"]), verify=args.verify)
    cols = ("kubernetes", "binary", "version", "source", "state", "path")
    widths = {c: max(len(c), *(len(str(r[c])) for r in table)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols).rstrip())
    for r in table:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols).rstrip())
    return 2 if any(r["state"] == "CORRUPT" for r in table) else 0


def add_parser(sub: Any) -> None:
    """Add ``upstream build`` and ``upstream list`` to the CLI's subparsers."""
    up = sub.add_parser(
        "upstream", help="build or list the pinned upstream Kubernetes parts (cache)"
    )
    usub = up.add_subparsers(dest="upstream_command", required=True)
    versions = sorted(releases())
    parts = sorted({*COMPONENT_BINARIES, *BINARY_COMPONENT})
    b = usub.add_parser(
        "build",
        help="build (or download) whatever is missing from the cache; idempotent",
        description="Build what the cache lacks, most needed first, with progress. Cache: "
        "$CONNTRACK_HARNESS_CACHE/upstream (default /var/cache/conntrack-harness/upstream).",
    )
    kube = {
        "action": "append",
        "metavar": "VERSION",
        "choices": [*versions, "all"],
    }
    b.add_argument(
        "--kubernetes",
        **kube,
        help=f"a pinned release ({', '.join(versions)}) or 'all'; repeatable. "
        f"Default: {default_version()}",
    )
    b.add_argument(
        "--component",
        action="append",
        metavar="NAME",
        choices=parts,
        help=f"only these: a component or a binary ({', '.join(parts)}); repeatable. Default: all",
    )
    b.add_argument(
        "--source",
        choices=builder.SOURCES,
        default="auto",
        help="go: build from source through the Go module proxy; download: the official "
        "release binaries, sha256-verified; auto: download, else build. Default: auto",
    )
    b.add_argument(
        "--mirror",
        metavar="URL",
        default=os.environ.get("CONNTRACK_HARNESS_MIRROR"),
        help="download from URL/HOST/PATH instead of https://HOST/PATH. "
        "Default: $CONNTRACK_HARNESS_MIRROR, else the official sites",
    )
    b.add_argument(
        "--rebuild", action="store_true", help="build even what is in the cache. Default: off"
    )
    b.add_argument(
        "--cold",
        action="store_true",
        help="rebuild with an empty Go build cache and record the time (the cold-build "
        "figure `python -m bench` reports). Default: off",
    )
    b.set_defaults(func=cmd_build)
    ls = usub.add_parser("list", help="each pinned binary: version, source, path, present?")
    ls.add_argument(
        "--kubernetes",
        **kube,
        help="a pinned release or 'all'; repeatable. Default: all",
    )
    ls.add_argument(
        "--verify",
        action="store_true",
        help="re-hash each binary against its stamp (exit 2 when one differs). Default: off",
    )
    ls.set_defaults(func=cmd_list)
