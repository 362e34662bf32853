"""The cold build's own record: when ``upstream build`` built a release's parts from nothing.

A build is *cold* when, at its start, the cache held none of the parts it was asked for (a
fresh machine's first ``make setup`` or ``make demo``), or when ``--cold`` rebuilt them with
an empty Go build cache. Such a build, when every part it planned got installed, appends one
line to ``<cache>/upstream/cold-builds.jsonl``: when it ran, what it built (release, parts,
source), its wall seconds and each part's, the machine (cores, load) and the state of Go's
own caches at the start (an empty Go build cache and module cache is a fresh machine; a warm
one is not). The bench's ``upstream_cold_build_s`` reads the latest line
(:func:`latest`) so the figure exists after the build that measured it, on any machine.

:func:`build_record` and :func:`covers` are pure; the rest reads or appends the file.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cthcommon.errors import HarnessError
from harness.upstream import cache_dir
from harness.upstream.gobuild import go_binary

RECORD_FILE = "cold-builds.jsonl"


def record_path() -> Path:
    return cache_dir() / RECORD_FILE


def dir_state(path: str) -> str:
    """``absent``, ``empty`` or ``warm`` (a file anywhere below ``path``)."""
    if not path or not os.path.isdir(path):
        return "absent"
    for _root, _dirs, files in os.walk(path):
        if files:
            return "warm"
    return "empty"


def go_cache_states(env: Mapping[str, str]) -> dict[str, str]:
    """The Go build cache's and module cache's state (``unknown`` without a Go toolchain)."""
    try:
        out = subprocess.run(
            [go_binary(), "env", "GOCACHE", "GOMODCACHE"],
            check=True,
            env=dict(env),
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError, HarnessError):
        return {"go_build_cache": "unknown", "go_module_cache": "unknown"}
    gocache, gomod = ([*out, "", ""])[:2]
    return {
        "go_build_cache": dir_state(gocache),
        "go_module_cache": dir_state(os.path.join(gomod, "cache", "download") if gomod else ""),
    }


def build_record(
    *,
    trigger: str,
    kubernetes: Iterable[str],
    source: str,
    started: str,
    finished: str,
    wall_s: float,
    parts: Iterable[Mapping[str, Any]],
    left_out: Iterable[str],
    cpus: int | None,
    load_avg_1m: tuple[float, float],
    go_caches: Mapping[str, str],
) -> dict[str, Any]:
    """One line of the record (pure). ``trigger``: ``empty cache`` or ``--cold``."""
    return {
        "trigger": trigger,
        "kubernetes": sorted(kubernetes),
        "source": source,
        "started": started,
        "finished": finished,
        "wall_s": round(wall_s, 1),
        "parts": [dict(p) for p in parts],
        "left_out": sorted(left_out),
        "cpus": cpus,
        "load_avg_1m": [round(x, 2) for x in load_avg_1m],
        **dict(go_caches),
    }


def append(record: Mapping[str, Any]) -> Path:
    path = record_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return path


def read_all() -> list[dict[str, Any]]:
    """Every record, oldest first; a line that is not a JSON object is skipped."""
    try:
        lines = record_path().read_text().splitlines()
    except OSError:
        return []
    out: list[dict[str, Any]] = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def covers(record: Mapping[str, Any], needed: set[tuple[str, str]]) -> bool:
    """Did ``record`` build every (component, binary) in ``needed`` (pure)?"""
    built = {
        (str(p.get("component")), str(b))
        for p in record.get("parts") or []
        if isinstance(p, Mapping)
        for b in p.get("binaries") or []
    }
    return needed <= built


def latest(kubernetes: str, needed: set[tuple[str, str]]) -> dict[str, Any] | None:
    """The newest record that built all of ``needed`` for release ``kubernetes``."""
    found = [
        rec
        for rec in read_all()
        if kubernetes in (rec.get("kubernetes") or []) and covers(rec, needed)
    ]
    return found[-1] if found else None
