"""Warm start of the embedded control plane (target: <= 15 s on 2 cores).

"Warm" means the binaries are in the cache (no build); everything else is measured: the PKI
(openssl), etcd until ``/health``, kube-apiserver until ``/readyz``, kube-controller-manager
until ``/healthz``, and the controllers until the ``default`` service accounts exist (pods can
be created). Wall time from ``ControlPlane.__enter__`` to its return; teardown timed apart.

    sudo flock /run/cth-dev.lock .venv/bin/python -m bench.control_plane [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.backends.netns.k8s.controlplane import ControlPlane, ControlPlaneConfig
from harness.kernel.journal import HostLock, Journal


def one_start(state: Path) -> dict[str, Any]:
    os.environ["CONNTRACK_HARNESS_STATE_DIR"] = str(state)
    with HostLock(wait_s=120):
        j = Journal.create(os.urandom(3).hex())
        cfg = ControlPlaneConfig(run_id=j.run_id, ns=f"cth-{j.run_id}-cp")
        t0 = time.monotonic()
        with ControlPlane(cfg, j, state / j.run_id) as cp:
            up = time.monotonic() - t0
            marks = dict(cp.timings.marks)
            t1 = time.monotonic()
        down = time.monotonic() - t1
        j.close()
    return {"start_s": round(up, 2), "stop_s": round(down, 2), "marks": marks}


def measure(runs: int) -> dict[str, Any]:
    out = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="cth-bench-cp-") as d:
            out.append(one_start(Path(d)))
    starts = [r["start_s"] for r in out]
    return {
        "control_plane_warm_start_s": max(starts),
        "median_s": statistics.median(starts),
        "load_avg_1m": os.getloadavg()[0],
        "runs": out,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3, help="starts to measure. Default: 3")
    args = ap.parse_args()
    print(json.dumps(measure(args.runs), indent=2))


if __name__ == "__main__":
    main()
