"""Bench: lookups/s of the DNS load engine through the ClusterIP path, next to dnsperf.

Both run from the client pods of the harness's own netns cluster (:mod:`bench.topo`), through
the kube-dns ClusterIP that kube-proxy's iptables rules on the node DNAT (and MASQUERADE) to
the CoreDNS pods (dnsmasq) on the other node: the path every scenario drives. dnsperf
(Debian's, C, reusing its sockets) shows what the path and servers can carry; the engine is
measured at a target rate with the glibc model (a new socket and a same-socket A/AAAA pair
per lookup, so one new conntrack entry per lookup), in the same topology, right after.

The host's ``nf_conntrack_max`` is shared with everyone on the machine; if another run
shrinks it, our node's table fills and lookups time out. Such runs are flagged
(``disturbed``) from the kernel's "table full" lines for our node namespace.

Run: ``sudo .venv/bin/python -m bench.dns_engine [--rate 10000] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import tempfile
import time
from typing import Any

from bench.topo import DNS_IP, SERVICE_FQDN, short_udp_timeouts, topology
from harness.backends.netns.k8s import coredns
from harness.backends.netns.topology import Topology
from harness.kernel.netns import inode, run
from loadgen.dns.accounting import summarize
from loadgen.dns.engine import run_dns_load
from loadgen.dns.types import ClientPod, DNSPlan

FQDN = SERVICE_FQDN
SERVICE_NAME = FQDN.rstrip(".")


def _table_full_lines(ns_inode: int, since: int) -> int:
    out = subprocess.run(["dmesg"], capture_output=True, text=True, check=False).stdout
    lines = out.splitlines()[since:]
    return sum(1 for ln in lines if f"table full in netns {ns_inode}" in ln)


def _dmesg_len() -> int:
    out = subprocess.run(["dmesg"], capture_output=True, text=True, check=False).stdout
    return len(out.splitlines())


def _cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def dnsperf(topo: Topology, seconds: float, clients: int = 4) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(f"{SERVICE_NAME} A\n{SERVICE_NAME} AAAA\n")
        qfile = f.name
    try:
        cp = run(
            ["dnsperf", "-s", DNS_IP, "-d", qfile, "-l", str(seconds), "-c", str(clients)],
            netns=topo.plan.role("client")[0].ns,
            timeout=seconds + 30,
        )
    finally:
        os.unlink(qfile)
    out: dict[str, Any] = {"clients": clients, "seconds": seconds}
    for raw in cp.stdout.splitlines():
        line = raw.strip()
        if line.startswith("Queries per second:"):
            out["queries_per_s"] = float(line.split(":")[1])
        elif line.startswith("Queries lost:"):
            out["queries_lost"] = int(line.split(":")[1].split()[0])
        elif line.startswith("Queries completed:"):
            out["queries_completed"] = int(line.split(":")[1].split()[0])
    out["pair_lookups_per_s_equiv"] = out.get("queries_per_s", 0.0) / 2
    return out


def _udp_rcvbuf_errors(netns: str) -> int:
    out = run(["nstat", "-az", "UdpRcvbufErrors"], netns=netns, check=False).stdout
    for line in out.splitlines():
        if line.startswith("UdpRcvbufErrors"):
            return int(line.split()[1])
    return 0


def _conntrack_drops(netns: str) -> int:
    out = run(["conntrack", "-S"], netns=netns, check=False).stdout
    return sum(int(w.split("=")[1]) for w in out.split() if w.startswith("drop="))


def _servers(topo: Topology) -> list[tuple[str, int]]:
    """(namespace, pid) of every running CoreDNS (its process is the k8s parts')."""
    procs = topo.k8s.comps.procs
    return [
        (p.ns, procs[coredns.proc_name(p.name)].pid)
        for p in topo.plan.role("coredns")
        if coredns.proc_name(p.name) in procs
    ]


def engine(topo: Topology, rate: float, seconds: float, workers: int) -> dict[str, Any]:
    resolv = topo.default_resolv()
    pods = [ClientPod(p.ns, p.ip, resolv) for p in topo.plan.role("client")]
    client_node = topo.plan.node(topo.plan.role("client")[0].node).ns
    plan = DNSPlan(
        rate=rate,
        duration_s=seconds,
        names=[FQDN],
        resolver="glibc",
        workers=workers,
        max_in_flight=8192,
    )
    node_inode = inode(client_node)
    mark = _dmesg_len()
    servers = _servers(topo)
    rcv0 = sum(_udp_rcvbuf_errors(ns) for ns, _ in servers)
    ct0 = sum(_conntrack_drops(n.ns) for n in topo.plan.nodes)
    srv0 = sum(_cpu_ticks(pid) for _, pid in servers)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    me0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.monotonic()
    records = asyncio.run(run_dns_load(pods, plan))
    wall = time.monotonic() - t
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    me1 = resource.getrusage(resource.RUSAGE_SELF)
    srv_cpu = (sum(_cpu_ticks(pid) for _, pid in servers) - srv0) / os.sysconf("SC_CLK_TCK")
    server_rcvbuf_drops = sum(_udp_rcvbuf_errors(ns) for ns, _ in servers) - rcv0
    node_conntrack_drops = sum(_conntrack_drops(n.ns) for n in topo.plan.nodes) - ct0
    n = len(records)
    starts = [r.t_start for r in records]
    span = (max(starts) - min(starts)) if n > 1 else 0.0
    # How far behind schedule lookups started (the engine's own lag).
    lag = sorted(s - i / rate for i, s in enumerate(sorted(starts)))
    summary = summarize(records, timeout_s=5.0)
    gen_cpu = (
        ru1.ru_utime
        - ru0.ru_utime
        + ru1.ru_stime
        - ru0.ru_stime
        + me1.ru_utime
        - me0.ru_utime
        + me1.ru_stime
        - me0.ru_stime
    )
    return {
        "target_rate": rate,
        "workers": workers,
        "pods": len(pods),
        "seconds": seconds,
        "lookups": n,
        "lookups_per_s": n / span if span else 0.0,
        "queries_per_s": summary["queries_sent"] / span if span else 0.0,
        "start_lag_ms_p50": 1000 * lag[len(lag) // 2] if lag else 0.0,
        "start_lag_ms_p99": 1000 * lag[int(len(lag) * 0.99)] if lag else 0.0,
        "timeouts": summary["timeouts"],
        "failed": summary["failed"],
        "latency_ms": summary["latency_ms"],
        "generator_cpu_s_per_1k_lookups_incl_startup_and_ipc": 1000 * gen_cpu / n if n else 0.0,
        "dns_servers_cpu_share": srv_cpu / wall if wall else 0.0,
        "wall_s": wall,
        "table_full_lines": _table_full_lines(node_inode, mark),
        # Where lost queries went: the server's socket buffer, or the node's conntrack.
        "server_rcvbuf_drops": server_rcvbuf_drops,
        "node_conntrack_drops": node_conntrack_drops,
    }


def _conntrack_max() -> int:
    with open("/proc/sys/net/netfilter/nf_conntrack_max") as f:
        return int(f.read())


def measure(
    rate: float = 10_000,
    seconds: float = 5.0,
    workers: int = 2,
    pods: int = 4,
    *,
    dnsperf_seconds: float = 5.0,
    server_priority: int = 0,
) -> dict[str, Any]:
    """Engine vs dnsperf on the harness topology's ClusterIP path, one topology, one run."""
    max0 = _conntrack_max()
    with topology(client_pods=pods) as topo:
        short_udp_timeouts(topo)
        if server_priority:
            # Our own servers only: serve before generating, so a starved server does not
            # drop what the generator sends (the generator lags instead, and that shows).
            for _, pid in _servers(topo):
                os.setpriority(os.PRIO_PROCESS, pid, server_priority)
        perf = dnsperf(topo, dnsperf_seconds)
        topo.flush_conntrack()
        eng = engine(topo, rate, seconds, workers)
    max1 = _conntrack_max()
    peer = perf.get("pair_lookups_per_s_equiv", 0.0)
    return {
        "bench": "dns_engine",
        "path": "client pod -> node-1 (iptables DNAT+MASQUERADE, kube-dns ClusterIP "
        f"{DNS_IP}) -> node-2 -> CoreDNS pods (dnsmasq)",
        "cpus": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "nf_conntrack_max": [max0, max1],
        "server_nice": server_priority,
        "dnsperf": perf,
        "engine": eng,
        # one glibc lookup = one A/AAAA pair; dnsperf's queries/s halved is the same unit
        "ratio_vs_dnsperf": eng["lookups_per_s"] / peer if peer else 0.0,
        "disturbed": eng["table_full_lines"] > 0 or max0 != max1,
    }


def _sigterm(_sig: int, _frm: object) -> None:
    raise SystemExit(143)  # so the testbed's cleanup runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=10_000, help="Target lookups/s. Default: 10000")
    ap.add_argument("--seconds", type=float, default=5.0, help="Load duration. Default: 5")
    ap.add_argument("--workers", type=int, default=2, help="Engine processes. Default: 2")
    ap.add_argument("--pods", type=int, default=4, help="Client pod namespaces. Default: 4")
    ap.add_argument(
        "--server-nice",
        type=int,
        default=0,
        help="Nice value for the bench's own dnsmasq (0: leave it). Default: 0",
    )
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, _sigterm)
    out = measure(
        args.rate, args.seconds, args.workers, args.pods, server_priority=args.server_nice
    )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
