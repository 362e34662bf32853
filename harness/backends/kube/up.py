"""The kind cluster ``conntrack-harness up`` keeps between runs, and its record.

``up SCENARIO --backend kind`` makes a kind cluster for the scenario's cluster config on the
Docker daemon that answers and keeps it; every ``run --backend kind`` after it (without
``CTH_KIND_CLUSTER``) reuses it, or rebuilds it when it was made for another cluster config
or another version of this project, and keeps it; ``down`` deletes it. The record, one file
in the state directory, says which cluster is up, on which daemon, made for what and when.

Only a daemon that outlives the command can keep a cluster: this project's private dockerd
stops when its run ends, so ``up`` needs the daemon that answers (``CTH_KIND_DOCKER`` auto
or system).
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.kernel.journal import state_dir
from harness.upstream.cache import write_atomic

RECORD = "up.json"
DEFAULT_NAME = "cth-up"


@dataclass(frozen=True)
class UpRecord:
    """What is up: a kind cluster ``cluster`` on the daemon at ``docker_host``."""

    backend: str
    cluster: str
    docker_host: str
    scenario: str  # the scenario it was made for (a later run may rebuild it for another)
    project: str  # the version of conntrack-harness that made it
    made_at: float  # seconds since the epoch
    state: str = "up"  # "creating" while `up` makes it (a killed `up` leaves that)
    pid: int = 0  # the `up` making it, while "creating"
    pid_start: int | None = None  # that process's start time (a reused PID is not it)

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.made_at))
        return (
            f"{self.backend} cluster {self.cluster} on the Docker daemon at {self.docker_host} "
            f"({self.state} since {when}, made for {self.scenario} by conntrack-harness "
            f"{self.project})"
        )

    @classmethod
    def from_json(cls, d: Mapping[str, object]) -> UpRecord:
        return cls(
            backend=str(d["backend"]),
            cluster=str(d["cluster"]),
            docker_host=str(d["docker_host"]),
            scenario=str(d["scenario"]),
            project=str(d["project"]),
            made_at=float(str(d["made_at"])),
            state=str(d.get("state", "up")),
            pid=int(str(d.get("pid", 0))),
            pid_start=None if d.get("pid_start") is None else int(str(d["pid_start"])),
        )


def record_path() -> Path:
    return state_dir() / RECORD


def read() -> UpRecord | None:
    """The record, or None when nothing is up (an unreadable record counts as none)."""
    try:
        return UpRecord.from_json(json.loads(record_path().read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write(rec: UpRecord) -> None:
    path = record_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_atomic(path, json.dumps(asdict(rec), indent=2, sort_keys=True) + "\n")


def remove() -> None:
    with contextlib.suppress(FileNotFoundError):
        record_path().unlink()


def cluster_for_run(environ: Mapping[str, str], docker_host: str) -> str | None:
    """The up cluster a kind run on the daemon at ``docker_host`` reuses (and keeps), unless
    the user named another (``CTH_KIND_CLUSTER``); None: nothing is up there."""
    rec = read()
    if rec is None or rec.backend != "kind" or rec.docker_host != docker_host:
        return None
    named = environ.get("CTH_KIND_CLUSTER")
    return rec.cluster if named in (None, "", rec.cluster) else None
