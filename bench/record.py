"""The bench's committed record: one dated line per ``make bench`` run in ``bench/records.jsonl``.

``bench/results.json`` (git-ignored) holds the last run with all its details; this file keeps
every run's figures where git can see them, so a figure quoted anywhere (the README's
benchmark table, an issue's closing note) has a source in the repository:

    {"date", "machine": {"hostname", "cores", "memory_gib", "load_avg_before", ...},
     "kernel", "commit", "dirty", "python", "skipped", "bench_wall_s",
     "figures": [{"name", "unit", "target", "met", "repeats", "min", "median", "max",
                  "values", "value", "detail"}]}

``value`` is the figure as the bench judges it against its target (``median`` unless the
figure says otherwise, e.g. the topology's best of its repeats). :func:`make_record` and
:func:`spread` are pure; :func:`append` and :func:`read` touch the file; the README reads it with
:func:`harness.report.readme.latest_figures`.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RECORDS = Path(__file__).resolve().parent / "records.jsonl"
REPO = Path(__file__).resolve().parent.parent


def spread(values: Sequence[float | None]) -> dict[str, Any]:
    """min/median/max over the measured values (None: not measured), and how many."""
    got = [float(v) for v in values if v is not None]
    if not got:
        return {"repeats": 0, "min": None, "median": None, "max": None, "values": []}
    return {
        "repeats": len(got),
        "min": round(min(got), 4),
        "median": round(statistics.median(got), 4),
        "max": round(max(got), 4),
        "values": [round(v, 4) for v in got],
    }


def memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / (1 << 20), 1)
    except OSError:
        pass
    return None


def git_state(repo: Path = REPO) -> tuple[str, bool]:
    """(HEAD's commit, whether tracked files differ from it); ("unknown", False) outside git.
    The records file itself does not count as a change."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
        ).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        changed = [
            ln[3:]
            for ln in git("status", "--porcelain", "--untracked-files=no").splitlines()
            if ln[3:] != "bench/records.jsonl"
        ]
    except (OSError, subprocess.CalledProcessError):
        return "unknown", False
    return commit, bool(changed)


def machine_identity() -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib(),
    }


def make_record(
    result: Mapping[str, Any],
    *,
    date: datetime,
    identity: Mapping[str, Any],
    commit: str,
    dirty: bool,
    skipped: Iterable[str],
) -> dict[str, Any]:
    """One line of the record from ``python -m bench``'s result (pure)."""
    m = result.get("machine", {})
    figures = []
    for f in result["figures"]:
        figures.append(
            {
                "name": f["name"],
                "unit": f["unit"],
                "target": f["target"],
                "met": f["met"],
                **spread(f.get("values", [f.get("value")])),
                "value": f["value"],
                **({"detail": f["detail"]} if "detail" in f else {}),
            }
        )
    return {
        "date": date.astimezone(UTC).isoformat(timespec="seconds"),
        "machine": {
            **identity,
            "load_avg_before": m.get("load_avg_before"),
            "load_avg_after": m.get("load_avg_after"),
            "other_cth_namespaces_after": m.get("other_cth_namespaces_after"),
        },
        "kernel": m.get("kernel", platform.release()),
        "commit": commit,
        "dirty": dirty,
        "python": m.get("python", platform.python_version()),
        "skipped": sorted(skipped),
        "bench_wall_s": result.get("bench_wall_s"),
        "figures": figures,
    }


def append(record: Mapping[str, Any], path: Path = RECORDS) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record, sort_keys=True, default=str) + "\n")


def read(path: Path = RECORDS) -> list[dict[str, Any]]:
    """Every record, oldest first."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
