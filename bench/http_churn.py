"""New TCP connections per second through the kube-proxy ClusterIP, by generator.

    sudo .venv/bin/python -m bench.http_churn

All measurements run in one harness topology (:mod:`bench.topo`): client pod -> node-1
(iptables DNAT + MASQUERADE for the http-server ClusterIP 10.96.0.20) -> node-2 -> nginx pod.
Each measurement gets its own client pods, so the TIME_WAIT sockets one leaves in its pods
cannot slow the next one's port allocation, and the nodes' conntrack tables are flushed in
between. Rates are counted twice: by the generator, and as the growth of the client node's
conntrack table (the number that matters for exhaustion). When the server closes first the
client keeps no TIME_WAIT and soon reuses source ports; a reused port takes over the old
conntrack entry, so for server-close runs the node's growth is below the connection rate.
``fill_65536`` is measured, not extrapolated: the raw client runs for 30 s from 3 client
pods, and the time at which the 65,536th connection was opened is read from its per-second
timeline.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from typing import Any

from bench.topo import HTTP_IP, conntrack_count, topology
from cthcommon.netns import run
from harness.backends.netns.topology import Topology
from loadgen.http.plan import HTTPPlan, HTTPTarget
from loadgen.http.rawclient import run_http_load_sync
from loadgen.http.workers import run_http_load_workers
from loadgen.locust.launch import run_locust
from loadgen.locust.plan import LocustPlan

DURATION_S = 5.0
TABLE = 65_536
FILL_WINDOW_S = 30.0


class _Pods:
    """Hands out unused client pods of one topology, and resets the nodes' tables."""

    def __init__(self, topo: Topology) -> None:
        self.topo = topo
        self.node = topo.plan.node(topo.plan.role("client")[0].node).ns
        self._free: Iterator[tuple[str, str]] = iter((p.ns, p.ip) for p in topo.plan.role("client"))

    def take(self, n: int) -> tuple[list[str], list[str]]:
        """Fresh client pods, empty node tables, and no server-side TIME_WAIT left by the
        previous generator: under MASQUERADE every client shares the node's IP towards
        nginx, so an earlier server-close run's TIME_WAIT sockets would collide with this
        run's SNAT ports and slow whoever measures second (measured: wrk 2,013 conn/s after
        the raw client, against about 5,000 before it)."""
        self.topo.flush_conntrack()
        for pod in self.topo.plan.role("http"):
            run(["ss", "-K", "-t", "state", "time-wait"], netns=pod.ns, check=False)
        got = [next(self._free) for _ in range(n)]
        return [ns for ns, _ in got], [ip for _, ip in got]

    def count(self) -> int:
        return conntrack_count(self.node)


def _raw(pods: _Pods, mode: str, workers: int = 2) -> dict[str, Any]:
    """The raw client in ``workers`` processes (wrk runs 2 threads: like for like on 2 CPUs)."""
    clients, _ = pods.take(2)
    c0 = pods.count()
    res = asyncio.run(
        run_http_load_workers(
            [HTTPTarget(HTTP_IP, netns=ns) for ns in clients],
            HTTPPlan(mode=mode, rate=50_000, duration_s=DURATION_S, max_in_flight=128),  # type: ignore[arg-type]
            workers,
        )
    )
    grew = pods.count() - c0
    return {
        "generator": f"rawclient {mode} (asyncio, {workers} processes, 2 client pods, "
        "64 in flight each)",
        "new_connections": res.new_connections,
        "failures": res.failures,
        "elapsed_s": round(res.elapsed_s, 2),
        "conn_per_s": round(res.connections_per_s),
        "node_conntrack_growth_per_s": round(grew / res.elapsed_s),
        "latency_ms_p50": round(res.latency_ms["p50"], 2),
    }


def _locust(pods: _Pods, workers: int) -> dict[str, Any]:
    clients, client_ips = pods.take(2)
    plan = LocustPlan(
        host=HTTP_IP,
        user="short-lived",
        users=32,
        duration_s=DURATION_S,
        workers=workers,
        worker_netns=clients if workers else [],
        master_host=client_ips[0] if workers else None,
    )
    c0 = pods.count()
    s = run_locust(plan, netns=clients[0])
    grew = pods.count() - c0
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


def _wrk(pods: _Pods) -> dict[str, Any]:
    clients, _ = pods.take(1)
    c0 = pods.count()
    argv = ["wrk", "-t2", "-c64", f"-d{int(DURATION_S)}s", "-H", "Connection: close"]
    out = run([*argv, f"http://{HTTP_IP}/"], netns=clients[0], timeout=60).stdout
    grew = pods.count() - c0
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Socket errors:(.*)", out)
    return {
        "generator": "wrk -t2 -c64 -H 'Connection: close' (server closes first)",
        # Connection: close makes every request a new connection.
        "conn_per_s": round(float(m.group(1))) if m else None,
        "node_conntrack_growth_per_s": round(grew / DURATION_S),
        "socket_errors": errors.group(1).strip() if errors else "none",
    }


def _fill(pods: _Pods) -> dict[str, Any]:
    clients, _ = pods.take(3)  # the topology gives client pods ports 1024-65535
    c0 = pods.count()
    res = run_http_load_sync(
        [HTTPTarget(HTTP_IP, netns=ns) for ns in clients],
        HTTPPlan(mode="short-lived", rate=50_000, duration_s=FILL_WINDOW_S, max_in_flight=64),
    )
    peak = pods.count() - c0
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


def measure(*, quick: bool = False) -> dict[str, Any]:
    """Every generator in one topology. ``quick``: only what the ``python -m bench`` figures
    need (the raw client in both one-connection-per-request modes, and wrk)."""
    t0 = time.monotonic()
    with topology(client_pods=5 if quick else 12, coredns=1) as topo:
        pods = _Pods(topo)
        results: dict[str, Any] = {
            "path": "client pod -> node-1 (iptables DNAT+MASQUERADE 10.96.0.20:80) -> node-2 "
            "-> nginx pod",
            "rawclient_short_lived": _raw(pods, "short-lived"),
            "rawclient_server_close": _raw(pods, "server-close"),
            "wrk_connection_close": _wrk(pods),
        }
        if not quick:
            results["locust_single"] = _locust(pods, 0)
            results["locust_2_workers"] = _locust(pods, 2)
            results["fill_65536"] = _fill(pods)
    wrk = results["wrk_connection_close"]["conn_per_s"] or 0
    # wrk with Connection: close and the raw client's server-close mode put the same packets
    # on the wire (new connection, one request, the server closes): like for like.
    raw = results["rawclient_server_close"]["conn_per_s"]
    results["ratio_vs_wrk"] = raw / wrk if wrk else 0.0
    results["ratio_short_lived_vs_wrk"] = (
        results["rawclient_short_lived"]["conn_per_s"] / wrk if wrk else 0.0
    )
    results["bench_wall_s"] = round(time.monotonic() - t0, 1)
    return results


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))
