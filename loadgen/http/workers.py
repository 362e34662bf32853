"""Run the raw HTTP client in several processes (one per CPU), and merge what they measured.

One Python process tops out near one core's worth of connect/close system calls (about
2,300 new connections/s here). Like the DNS engine, the HTTP load splits across worker
processes: each gets every N-th target and 1/N of the rate, fill and in-flight budget, and
the results are merged exactly (counts add, latencies concatenate, timelines add per second).

    python -m loadgen.http.workers   # internal: one worker, JSON plan on stdin, result on stdout
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from dataclasses import asdict, replace
from typing import Any

from loadgen.http.plan import HTTPLoadResult, HTTPPlan, HTTPTarget, TimelineRow, latency_summary
from loadgen.http.rawclient import run_http_load


def split(
    targets: list[HTTPTarget], plan: HTTPPlan, workers: int
) -> list[tuple[list[HTTPTarget], HTTPPlan]]:
    """Every worker gets a share of the targets and of the plan's budgets (pure)."""
    n = max(1, min(workers, len(targets)))
    shares = []
    for i in range(n):
        mine = targets[i::n]
        shares.append(
            (
                mine,
                replace(
                    plan,
                    rate=plan.rate / n,
                    pool_size=max(1, plan.pool_size // n),
                    max_in_flight=max(1, plan.max_in_flight // n),
                    fill_connections=plan.fill_connections // n,
                ),
            )
        )
    return shares


def merge(parts: list[HTTPLoadResult]) -> HTTPLoadResult:
    """One result from the workers' results (pure)."""
    per_s: dict[int, list[int]] = {}
    for p in parts:
        for row in p.timeline:
            acc = per_s.setdefault(int(row["t_s"]), [0, 0, 0])
            acc[0] += row["requests"]
            acc[1] += row["failures"]
            acc[2] += row["new_connections"]
    latencies = sorted(x for p in parts for x in p.latencies_ms)
    errors: dict[str, int] = {}
    for p in parts:
        for k, v in p.errors.items():
            errors[k] = errors.get(k, 0) + v
    fills = [p.fill_s for p in parts if p.fill_s is not None]
    return HTTPLoadResult(
        mode=parts[0].mode,
        requests=sum(p.requests for p in parts),
        failures=sum(p.failures for p in parts),
        new_connections=sum(p.new_connections for p in parts),
        connect_failures=sum(p.connect_failures for p in parts),
        elapsed_s=max(p.elapsed_s for p in parts),
        latency_ms=latency_summary(latencies),
        latencies_ms=latencies,
        errors=errors,
        timeline=[
            TimelineRow(t_s=t, requests=r[0], failures=r[1], new_connections=r[2])
            for t, r in sorted(per_s.items())
        ],
        fill_s=max(fills) if fills else None,
    )


async def run_http_load_workers(
    targets: list[HTTPTarget], plan: HTTPPlan, workers: int
) -> HTTPLoadResult:
    """``run_http_load`` over ``workers`` processes (in this process when 1)."""
    shares = split(targets, plan, workers)
    if len(shares) == 1:
        return await run_http_load(targets, plan)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "loadgen.http.workers",
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for _ in shares
    ]
    try:
        outs = await asyncio.gather(
            *(
                p.communicate(
                    json.dumps({"targets": [asdict(t) for t in ts], "plan": asdict(pl)}).encode()
                )
                for p, (ts, pl) in zip(procs, shares, strict=True)
            )
        )
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
    parts = []
    for p, (out, _) in zip(procs, outs, strict=True):
        if p.returncode != 0:
            raise RuntimeError(f"HTTP load worker {p.pid} exited {p.returncode}")
        parts.append(HTTPLoadResult(**json.loads(out)))
    return merge(parts)


def _worker() -> int:
    spec: dict[str, Any] = json.loads(sys.stdin.read())
    targets = [HTTPTarget(**t) for t in spec["targets"]]
    res = asyncio.run(run_http_load(targets, HTTPPlan(**spec["plan"])))
    sys.stdout.write(json.dumps(asdict(res)))
    return 0


if __name__ == "__main__":
    sys.exit(_worker())
