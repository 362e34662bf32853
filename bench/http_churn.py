"""New TCP connections per second through a DNAT "ClusterIP", by generator.

    sudo .venv/bin/python -m bench.http_churn

Each measurement gets a fresh testbed (node namespace with the DNAT rule, nginx pod, client
pods), so TIME_WAIT from one run cannot slow the next. Rates are counted twice: by the
generator, and as the growth of the node's conntrack table (the number that matters for
exhaustion). When the server closes first the client keeps no TIME_WAIT and soon reuses
source ports; a reused port takes over the old conntrack entry, so for server-close runs
the node's growth is below the connection rate. ``fill_65536`` is measured, not
extrapolated: the raw client runs for 30 s from 3 client pods, and the time at which the
65,536th connection was opened is read from its per-second timeline.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from harness.kernel.netns import run
from loadgen.http.plan import HTTPPlan, HTTPTarget
from loadgen.http.rawclient import run_http_load_sync
from loadgen.http.testbed import build_testbed
from loadgen.locust.launch import run_locust
from loadgen.locust.plan import LocustPlan

DURATION_S = 5.0
TABLE = 65_536
FILL_WINDOW_S = 30.0


def _raw(mode: str) -> dict[str, Any]:
    with build_testbed("lcb", clients=2) as tb:
        c0 = tb.conntrack_count()
        res = run_http_load_sync(
            [HTTPTarget(tb.cluster_ip, netns=ns) for ns in tb.clients],
            HTTPPlan(mode=mode, rate=50_000, duration_s=DURATION_S, max_in_flight=64),  # type: ignore[arg-type]
        )
        grew = tb.conntrack_count() - c0
    return {
        "generator": f"rawclient {mode} (asyncio, 1 process, 2 client pods, 64 in flight)",
        "new_connections": res.new_connections,
        "failures": res.failures,
        "elapsed_s": round(res.elapsed_s, 2),
        "conn_per_s": round(res.connections_per_s),
        "node_conntrack_growth_per_s": round(grew / res.elapsed_s),
        "latency_ms_p50": round(res.latency_ms["p50"], 2),
    }


def _locust(workers: int) -> dict[str, Any]:
    with build_testbed("lcb", clients=2) as tb:
        plan = LocustPlan(
            host=tb.cluster_ip,
            user="short-lived",
            users=32,
            duration_s=DURATION_S,
            workers=workers,
            worker_netns=tb.clients if workers else [],
            master_host=tb.client_ips[0] if workers else None,
        )
        c0 = tb.conntrack_count()
        s = run_locust(plan, netns=tb.clients[0])
        grew = tb.conntrack_count() - c0
    label = f"{workers} workers in 2 pods" if workers else "1 process"
    return {
        "generator": f"locust ShortLivedUser ({label}, 32 users, no wait)",
        "new_connections": s["new_connections"],
        "failures": s["failures"],
        "elapsed_s": round(s["elapsed_s"], 2),
        "conn_per_s": round(s["connections_per_s"]),
        "node_conntrack_growth_per_s": round(grew / s["elapsed_s"]),
        "latency_ms_p50": s["latency_ms"]["p50"],
    }


def _wrk() -> dict[str, Any]:
    with build_testbed("lcb", clients=1) as tb:
        c0 = tb.conntrack_count()
        argv = ["wrk", "-t2", "-c64", f"-d{int(DURATION_S)}s", "-H", "Connection: close"]
        out = run([*argv, f"http://{tb.cluster_ip}/"], netns=tb.clients[0], timeout=60).stdout
        grew = tb.conntrack_count() - c0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Socket errors:(.*)", out)
    return {
        "generator": "wrk -t2 -c64 -H 'Connection: close' (server closes first)",
        # Connection: close makes every request a new connection.
        "conn_per_s": round(float(m.group(1))) if m else None,
        "node_conntrack_growth_per_s": round(grew / DURATION_S),
        "socket_errors": errors.group(1).strip() if errors else "none",
    }


def _fill() -> dict[str, Any]:
    with build_testbed("lcb", clients=3, wide_port_range=True) as tb:
        c0 = tb.conntrack_count()
        res = run_http_load_sync(
            [HTTPTarget(tb.cluster_ip, netns=ns) for ns in tb.clients],
            HTTPPlan(mode="short-lived", rate=50_000, duration_s=FILL_WINDOW_S, max_in_flight=64),
        )
        peak = tb.conntrack_count() - c0
    cumulative, reached_at = 0, None
    for row in res.timeline:
        cumulative += row["new_connections"]
        if reached_at is None and cumulative >= TABLE:
            # interpolate inside the second in which the count crossed the line
            before = cumulative - row["new_connections"]
            reached_at = row["t_s"] + (TABLE - before) / max(1, row["new_connections"])
    return {
        "generator": "rawclient short-lived, 3 client pods, ports 1024-65535",
        "window_s": FILL_WINDOW_S,
        "new_connections": res.new_connections,
        "failures": res.failures,
        "node_conntrack_entries_added": peak,
        "seconds_to_65536": round(reached_at, 1) if reached_at is not None else None,
        "fills_65536_within_30s": reached_at is not None and reached_at <= FILL_WINDOW_S,
    }


def measure() -> dict[str, Any]:
    t0 = time.monotonic()
    results = {
        "path": "client pod -> node (iptables-nft DNAT 10.96.0.20:80) -> nginx pod",
        "rawclient_short_lived": _raw("short-lived"),
        "rawclient_server_close": _raw("server-close"),
        "locust_single": _locust(0),
        "locust_2_workers": _locust(2),
        "wrk_connection_close": _wrk(),
        "fill_65536": _fill(),
    }
    results["bench_wall_s"] = round(time.monotonic() - t0, 1)
    return results


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
