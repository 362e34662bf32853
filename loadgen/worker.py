"""The load worker: ``python -m loadgen.worker --plan PLAN.json --out RESULT.json``.

Runs the DNS and HTTP generators of one phase concurrently in one event loop, with sockets
inside the client pods' namespaces, and writes what they measured as JSON. The harness starts
it as a separate process (journaled by PID) so a load generator can never wedge the
controller, and so other generators (Locust, in-pod images on kind) fit the same contract:
JSON plan in, JSON result out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harness.dns.resolvconf import ResolvConf
from harness.stats import LATENCY_EDGES_S, bucket_latencies
from loadgen.dns.accounting import summarize
from loadgen.dns.engine import run_dns_load
from loadgen.dns.types import ClientPod, DNSPlan
from loadgen.http.plan import HTTPPlan, HTTPTarget
from loadgen.http.workers import run_http_load_workers

MAX_NAMES = 50
DNS_PLAN_FIELDS = {
    "rate",
    "duration_s",
    "names",
    "resolver",
    "lookups_per_process",
    "pattern",
    "burst_on_s",
    "burst_off_s",
    "workers",
    "drain",
    "family",
}


async def _dns(spec: dict[str, Any]) -> dict[str, Any]:
    pods = [ClientPod(p["netns"], p["ip"], ResolvConf.parse(p["resolv"])) for p in spec["pods"]]
    plan = DNSPlan(**{k: v for k, v in spec["plan"].items() if k in DNS_PLAN_FIELDS})
    t0 = time.monotonic()
    records = await run_dns_load(pods, plan)
    summary = summarize(records, timeout_s=pods[0].resolv.timeout)
    summary["elapsed_s"] = round(time.monotonic() - t0, 3)
    summary["latency_hist"] = {
        "edges_s": list(LATENCY_EDGES_S),
        "counts": bucket_latencies([r.latency_s for r in records]),
    }
    summary["by_name"] = by_name(records)
    outcomes: dict[str, int] = {}
    for r in records:
        outcomes[r.outcome] = outcomes.get(r.outcome, 0) + 1
    summary["outcomes"] = outcomes
    return dict(summary)


def by_name(records: list[Any]) -> dict[str, dict[str, float]]:
    """Queries per lookup and timeouts for each name looked up (ndots amplification)."""
    out: dict[str, dict[str, float]] = {}
    many = len({r.name for r in records}) > MAX_NAMES
    for r in records:
        # thousands of distinct generated names are grouped by their shape (digits -> {n})
        key = re.sub(r"\d+", "{n}", r.name) if many else r.name
        d = out.setdefault(key, {"lookups": 0, "queries": 0, "full_timeout_waits": 0})
        d["lookups"] += 1
        d["queries"] += r.queries_sent
        d["full_timeout_waits"] += r.full_timeout_waits
    for d in out.values():
        d["queries_per_lookup"] = round(d["queries"] / d["lookups"], 3)
    return out


async def _http(spec: dict[str, Any]) -> dict[str, Any]:
    targets = [
        HTTPTarget(address=t["ip"], port=t["port"], netns=t["netns"]) for t in spec["targets"]
    ]
    p = spec["plan"]
    plan = HTTPPlan(
        mode=p["mode"],
        rate=p["rate"],
        duration_s=p["duration_s"],
        pool_size=p["pool_size"],
        connect_timeout_s=p["connect_timeout_s"],
        max_in_flight=p["max_in_flight"],
        fill_connections=p.get("fill_connections", 0),
    )
    res = await run_http_load_workers(targets, plan, int(p.get("workers", 1)))
    out = dict(res.to_http_result())
    out.update(
        connect_failures=res.connect_failures,
        elapsed_s=round(res.elapsed_s, 3),
        latency_ms=dict(res.latency_ms),
        errors=res.errors,
        fill_connections=plan.fill_connections,
        fill_s=None if res.fill_s is None else round(res.fill_s, 3),
        timeline=[list(r) if not isinstance(r, dict) else r for r in res.timeline],
    )
    return out


async def run_plan(plan: dict[str, Any]) -> dict[str, Any]:
    # CLOCK_MONOTONIC is system-wide: the harness places the load start on its own timeline.
    started = time.monotonic()
    jobs: dict[str, asyncio.Task[dict[str, Any]]] = {}
    if "dns" in plan:
        jobs["dns"] = asyncio.create_task(_dns(plan["dns"]))
    if "http" in plan:
        jobs["http"] = asyncio.create_task(_http(plan["http"]))
    out: dict[str, Any] = {name: await task for name, task in jobs.items()}
    out["started_monotonic"] = started
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="loadgen.worker")
    ap.add_argument("--plan", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args(argv)
    plan = json.loads(args.plan.read_text())
    result = asyncio.run(run_plan(plan))
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, default=asdict))
    tmp.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
