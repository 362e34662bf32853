"""Start ``python -m loadgen.locust.run`` as a subprocess and read its result.

Locust-free: this is what the harness and pytest call; Locust and gevent stay in the child.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import cast

from cthcommon.errors import BackendError, BadInput
from cthcommon.netns import exec_argv
from loadgen.locust.endpoints import LocustfileStats
from loadgen.locust.plan import LocustPlan
from loadgen.locust.stats import LocustStats
from loadgen.locust.userplan import LocustfilePlan

STARTUP_ALLOWANCE_S = 60.0  # process start, worker connect, final reports


def command(plan: LocustPlan | LocustfilePlan, out: Path, *, netns: str | None = None) -> list[str]:
    """The argv that runs ``plan`` (inside ``netns`` when given), writing JSON to ``out``."""
    module = "loadgen.locust.userrun" if isinstance(plan, LocustfilePlan) else "loadgen.locust.run"
    argv = [sys.executable, "-m", module, "--plan-json", plan.to_json(), "--out", str(out)]
    return exec_argv(netns, argv) if netns else argv


def _run_child(
    plan: LocustPlan | LocustfilePlan, netns: str | None, timeout_s: float | None
) -> object:
    limit = timeout_s if timeout_s is not None else plan.duration_s + STARTUP_ALLOWANCE_S
    with tempfile.TemporaryDirectory(prefix="cth-locust-") as tmp:
        out = Path(tmp) / "result.json"
        argv = command(plan, out, netns=netns)
        try:
            cp = subprocess.run(argv, capture_output=True, text=True, timeout=limit, check=False)
        except subprocess.TimeoutExpired as e:
            raise BackendError(f"Locust run did not finish within {limit:.0f}s", argv=argv) from e
        if cp.returncode == BadInput.exit_code:
            raise BadInput(cp.stderr.strip()[-1500:], field="locustfile")
        if cp.returncode != 0 or not out.exists():
            raise BackendError(
                f"Locust run failed ({cp.returncode}): {cp.stderr.strip()[-1500:]}", argv=argv
            )
        return json.loads(out.read_text())


def run_locust(
    plan: LocustPlan, *, netns: str | None = None, timeout_s: float | None = None
) -> LocustStats:
    """Run ``plan`` in a child process and return its stats; raise BackendError on failure."""
    return cast(LocustStats, _run_child(plan, netns, timeout_s))


def run_locustfile(
    plan: LocustfilePlan, *, netns: str | None = None, timeout_s: float | None = None
) -> LocustfileStats:
    """Run a user's locustfile in a child process (the master, inside ``netns``)."""
    if importlib.util.find_spec("locust") is None:  # found, not imported: no monkey-patching
        raise BackendError(
            "a locustfile load needs Locust: pip install 'conntrack-harness[locust]'"
        )
    return cast(LocustfileStats, _run_child(plan, netns, timeout_s))
