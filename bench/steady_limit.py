"""The aged warm-up at the table's limit (issue 18, item 9): at 1.07x demand, a 20 s phase
after the aged warm-up and a natural 300 s phase's steady window must agree.

The load (issue 18's): host nf_conntrack_max 16,384 (buckets follow it), short-lived HTTP at
140 new connections/s with TIME_WAIT 120 s (16,800 entries, 1.07x the table) and 25 glibc
lookups/s through the kube-dns ClusterIP. Two runs of the same scenario on netns with the
real parts: ``warmup: aged`` for 20 s, and ``warmup: none`` for 300 s, judged on the window
after its table reached its steady state (``judged_on: "window"``). Written to
``bench/steady_limit.json``: each side's timeout rate with its Wilson and batch-means
intervals, the early drops, and whether the intervals overlap. About 6 minutes.

    sudo .venv/bin/python -m bench.steady_limit [--out bench/steady_limit.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import runner
from harness.scenario.loader import parse_scenario

OUT = Path(__file__).resolve().parent / "steady_limit.json"
LOAD: dict[str, Any] = {
    "http": {"mode": "short-lived", "rate": 140},
    "dns": {"rate": 25, "resolver": "glibc", "names": ["http-server", "kube-dns.kube-system"]},
}
SIDES = {"aged": ("aged", 20), "natural": ("none", 300)}


def scenario(name: str, warmup: str, duration_s: int) -> dict[str, Any]:
    return {
        "name": f"steady-limit-{name}",
        "host": {"nf_conntrack_max": 16384},
        "cluster": {
            "nodes": 2,
            "client_pods": 4,
            "coredns": {"replicas": 2},
            "http_server": {"replicas": 1},
            "masquerade_all": True,
            "dns_config": {
                "nameservers": ["cluster-dns"],
                "options": [{"name": "ndots", "value": "5"}],
            },
        },
        "load": {"duration_s": duration_s, "warmup": warmup, **LOAD},
        "phases": [{"name": "baseline"}],
    }


def side(result: dict[str, Any]) -> dict[str, Any]:
    """What one run measured, on the lookups its verdict is judged on."""
    p = result["phases"][0]
    ss = p["steady_state"]
    w = ss.get("window") or {}
    judged_on = ss.get("judged_on", "phase")
    return {
        "run_id": result["run_id"],
        "steady": ss["reached"],
        "judged_on": judged_on,
        "steady_from_s": ss.get("time_to_steady_s"),
        "warmup": ss.get("warmup", {}).get("method"),
        "lookups": w.get("lookups"),
        "timeouts": w.get("timeouts"),
        "timeout_rate": w.get("timeout_rate"),
        "wilson": [w.get("low"), w.get("high")],
        "batch_means": [w.get("batch_low"), w.get("batch_high")],
        "phase_timeout_rate": p["dns"]["timeout_rate"],
        "early_drop": p["conntrack"]["early_drop"],
        "drop": p["conntrack"]["drop"],
        "buckets": result["environment"]["sysctls"].get(
            "net.netfilter.nf_conntrack_buckets (during run)"
        ),
    }


def overlap(a: list[float], b: list[float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    sides: dict[str, Any] = {}
    for name, (warmup, duration) in SIDES.items():
        t0 = time.monotonic()
        result = runner.run_scenario(
            parse_scenario(scenario(name, warmup, duration)), backend="netns", wait_s=3600
        )
        sides[name] = {**side(dict(result)), "wall_s": round(time.monotonic() - t0, 1)}
        print(name, json.dumps(sides[name]))
    a, n = sides["aged"], sides["natural"]
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    out = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "kernel": platform.release(),
        "commit": commit,
        "load": {"nf_conntrack_max": 16384, **LOAD, "tcp_timeout_time_wait_s": 120},
        "sides": sides,
        "agree_wilson": overlap(a["wilson"], n["wilson"]),
        "agree_batch_means": overlap(a["batch_means"], n["batch_means"]),
    }
    args.out.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps({k: out[k] for k in ("agree_wilson", "agree_batch_means")}))


if __name__ == "__main__":
    main()
