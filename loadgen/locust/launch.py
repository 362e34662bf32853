"""Start ``python -m loadgen.locust.run`` as a subprocess and read its result.

Locust-free: this is what the harness and pytest call; Locust and gevent stay in the child.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import cast

from harness.errors import BackendError
from harness.kernel.netns import exec_argv
from loadgen.locust.plan import LocustPlan
from loadgen.locust.stats import LocustStats

STARTUP_ALLOWANCE_S = 60.0  # process start, worker connect, final reports


def command(plan: LocustPlan, out: Path, *, netns: str | None = None) -> list[str]:
    """The argv that runs ``plan`` (inside ``netns`` when given), writing JSON to ``out``."""
    argv = [
        sys.executable,
        "-m",
        "loadgen.locust.run",
        "--plan-json",
        plan.to_json(),
        "--out",
        str(out),
    ]
    return exec_argv(netns, argv) if netns else argv


def run_locust(
    plan: LocustPlan, *, netns: str | None = None, timeout_s: float | None = None
) -> LocustStats:
    """Run ``plan`` in a child process and return its stats; raise BackendError on failure."""
    limit = timeout_s if timeout_s is not None else plan.duration_s + STARTUP_ALLOWANCE_S
    with tempfile.TemporaryDirectory(prefix="cth-locust-") as tmp:
        out = Path(tmp) / "result.json"
        argv = command(plan, out, netns=netns)
        try:
            cp = subprocess.run(argv, capture_output=True, text=True, timeout=limit, check=False)
        except subprocess.TimeoutExpired as e:
            raise BackendError(f"Locust run did not finish within {limit:.0f}s", argv=argv) from e
        if cp.returncode != 0 or not out.exists():
            raise BackendError(
                f"Locust run failed ({cp.returncode}): {cp.stderr.strip()[-1500:]}", argv=argv
            )
        return cast(LocustStats, json.loads(out.read_text()))
