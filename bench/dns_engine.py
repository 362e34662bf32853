"""Bench: lookups/s of the DNS load engine through the ClusterIP path, next to dnsperf.

Both run from the client pods of the harness's own netns cluster (:mod:`bench.topo`), through
the kube-dns ClusterIP that kube-proxy's iptables rules on the node DNAT (and MASQUERADE) to
the CoreDNS pods on the other node: the path every scenario drives. dnsperf (Debian's, C,
reusing its sockets) shows what the path and servers can carry; the engine runs the glibc
model (a new socket and a same-socket A/AAAA pair per lookup, so one new conntrack entry per
lookup), in the same topology.

Side by side, in one run: dnsperf, then the engine, then dnsperf again, ... (``--repeats``
pairs, the conntrack table flushed between them); each pair gives one ratio, and the figure
is their median (min and max kept). Both are closed loops with the same bound: dnsperf keeps
``--outstanding`` queries in flight, the engine as many queries' worth of lookups (two
queries each) and is offered more than dnsperf carried (``--offer`` times dnsperf's pair
rate of that pair), so each shows what it can push through the path, not what it was
asked for. One glibc lookup is one A/AAAA pair: dnsperf's queries/s halved is the same
unit. The engine's figure counts lookups that got their answer, per second of load.

The host's ``nf_conntrack_max`` is shared with everyone on the machine; if another run
shrinks it, our node's table fills and lookups time out. Such runs are flagged
(``disturbed``) from the kernel's "table full" lines for our node namespace.

Run: ``sudo .venv/bin/python -m bench.dns_engine [--repeats 5] [--workers 2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench.matrix import LOCK_WAIT_S
from bench.topo import DNS_IP, SERVICE_FQDN, short_udp_timeouts, topology
from cthcommon.netns import inode, run
from harness.backends.netns.k8s import coredns
from harness.backends.netns.topology import Topology
from harness.kernel.journal import HostLock
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


def dnsperf(
    netns: str, server: str, name: str, seconds: float, *, clients: int = 4, outstanding: int = 200
) -> dict[str, Any]:
    """dnsperf from ``netns`` at ``server``: A and AAAA for ``name`` in turn, as fast as it
    goes with ``outstanding`` queries in flight over ``clients`` sockets."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write(f"{name} A\n{name} AAAA\n")
        qfile = f.name
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        cp = run(
            [
                "dnsperf",
                *("-s", server, "-d", qfile, "-l", str(seconds)),
                *("-c", str(clients), "-q", str(outstanding)),
            ],
            netns=netns,
            timeout=seconds + 30,
        )
    finally:
        os.unlink(qfile)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = ru1.ru_utime - ru0.ru_utime + ru1.ru_stime - ru0.ru_stime
    out: dict[str, Any] = {"clients": clients, "outstanding": outstanding, "seconds": seconds}
    for raw in cp.stdout.splitlines():
        line = raw.strip()
        if line.startswith("Queries per second:"):
            out["queries_per_s"] = float(line.split(":")[1])
        elif line.startswith("Queries lost:"):
            out["queries_lost"] = int(line.split(":")[1].split()[0])
        elif line.startswith("Queries completed:"):
            out["queries_completed"] = int(line.split(":")[1].split()[0])
    out["pair_lookups_per_s_equiv"] = out.get("queries_per_s", 0.0) / 2
    pairs = out.get("queries_completed", 0) / 2
    out["cpu_us_per_pair"] = 1e6 * cpu / pairs if pairs else 0.0
    return out


def with_server_cpu(
    topo: Topology, measure_fn: Callable[[], dict[str, Any]], per: Callable[[dict[str, Any]], float]
) -> dict[str, Any]:
    """``measure_fn()``'s result plus the CoreDNS processes' CPU per unit of work (``per``)."""
    servers = _servers(topo)
    t0 = sum(_cpu_ticks(pid) for _, pid in servers)
    out = measure_fn()
    cpu = (sum(_cpu_ticks(pid) for _, pid in servers) - t0) / os.sysconf("SC_CLK_TCK")
    n = per(out)
    out["servers_cpu_us_per_pair"] = 1e6 * cpu / n if n else 0.0
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


def engine(topo: Topology, rate: float, seconds: float, workers: int, **kw: Any) -> dict[str, Any]:
    """The engine on the topology's client pods, with its servers' and nodes' counters."""
    resolv = topo.default_resolv()
    pods = [ClientPod(p.ns, p.ip, resolv) for p in topo.plan.role("client")]
    client_node = topo.plan.node(topo.plan.role("client")[0].node).ns
    node_inode = inode(client_node)
    mark = _dmesg_len()
    servers = _servers(topo)
    rcv0 = sum(_udp_rcvbuf_errors(ns) for ns, _ in servers)
    ct0 = sum(_conntrack_drops(n.ns) for n in topo.plan.nodes)
    srv0 = sum(_cpu_ticks(pid) for _, pid in servers)
    out = engine_on(pods, FQDN, rate, seconds, workers, **kw)
    srv_cpu = (sum(_cpu_ticks(pid) for _, pid in servers) - srv0) / os.sysconf("SC_CLK_TCK")
    out["dns_servers_cpu_share"] = srv_cpu / out["wall_s"] if out["wall_s"] else 0.0
    out["table_full_lines"] = _table_full_lines(node_inode, mark)
    # Where lost queries went: the server's socket buffer, or the node's conntrack.
    out["server_rcvbuf_drops"] = sum(_udp_rcvbuf_errors(ns) for ns, _ in servers) - rcv0
    out["node_conntrack_drops"] = sum(_conntrack_drops(n.ns) for n in topo.plan.nodes) - ct0
    return out


def engine_on(
    pods: list[ClientPod],
    name: str,
    rate: float,
    seconds: float,
    workers: int,
    *,
    max_in_flight: int = 8192,
) -> dict[str, Any]:
    """The engine (glibc model) offering ``rate`` lookups/s of ``name`` for ``seconds``."""
    plan = DNSPlan(
        rate=rate,
        duration_s=seconds,
        names=[name],
        resolver="glibc",
        workers=workers,
        max_in_flight=max_in_flight,
    )
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    me0 = resource.getrusage(resource.RUSAGE_SELF)
    t = time.monotonic()
    records = asyncio.run(run_dns_load(pods, plan))
    wall = time.monotonic() - t
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    me1 = resource.getrusage(resource.RUSAGE_SELF)
    n = len(records)
    starts = [r.t_start for r in records]
    span = (max(starts) - min(starts)) if n > 1 else 0.0
    answered = sum(1 for r in records if r.outcome == "answer")
    # How far behind schedule lookups started (the engine's own lag, or the in-flight bound).
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
        "max_in_flight": max_in_flight,
        "workers": workers,
        "pods": len(pods),
        "seconds": seconds,
        "lookups": n,
        "answered": answered,
        "lookups_per_s": n / span if span else 0.0,
        "answered_per_s": answered / span if span else 0.0,
        "queries_per_s": summary["queries_sent"] / span if span else 0.0,
        "start_lag_ms_p50": 1000 * lag[len(lag) // 2] if lag else 0.0,
        "start_lag_ms_p99": 1000 * lag[int(len(lag) * 0.99)] if lag else 0.0,
        "timeouts": summary["timeouts"],
        "failed": summary["failed"],
        "latency_ms": summary["latency_ms"],
        "generator_cpu_s_per_1k_lookups_incl_startup_and_ipc": 1000 * gen_cpu / n if n else 0.0,
        "cpu_us_per_lookup": 1e6 * gen_cpu / n if n else 0.0,
        "wall_s": wall,
    }


def side_by_side(
    run_dnsperf: Callable[[], dict[str, Any]],
    run_engine: Callable[[float, float], dict[str, Any]],
    between: Callable[[], None],
    *,
    repeats: int,
    rate: float | None,
    offer: float,
    seconds: float,
) -> dict[str, Any]:
    """dnsperf, engine, dnsperf, engine, ...: one ratio per pair; their median, min and max.

    ``run_engine(rate, seconds)``: the engine is offered ``rate`` lookups/s for ``seconds``;
    or (``rate`` None) as many lookups as dnsperf just answered pairs in ``seconds``, at
    ``offer`` times its pair rate (so it runs about ``seconds`` if it matches dnsperf)."""
    runs: list[dict[str, Any]] = []
    for _ in range(repeats):
        perf = run_dnsperf()
        between()
        peer = perf.get("pair_lookups_per_s_equiv", 0.0)
        if rate:
            eng = run_engine(rate, seconds)
        else:
            # As many lookups as dnsperf answered pairs, offered faster than it carried them.
            eng = run_engine(max(100.0, offer * peer), seconds / offer)
        between()
        runs.append(
            {
                "dnsperf": perf,
                "engine": eng,
                "ratio": eng["answered_per_s"] / peer if peer else 0.0,
                "load_avg_1m": os.getloadavg()[0],
            }
        )
    ratios = sorted(r["ratio"] for r in runs)
    return {
        "ratio_vs_dnsperf": statistics.median(ratios),
        "ratio_min": ratios[0],
        "ratio_max": ratios[-1],
        "ratios": [round(r["ratio"], 3) for r in runs],
        "runs": runs,
    }


def _conntrack_max() -> int:
    with open("/proc/sys/net/netfilter/nf_conntrack_max") as f:
        return int(f.read())


def measure(
    rate: float | None = None,
    seconds: float = 5.0,
    workers: int = 2,
    pods: int = 4,
    *,
    repeats: int = 5,
    offer: float = 1.5,
    outstanding: int = 200,
    dnsperf_seconds: float = 5.0,
    server_priority: int = 0,
) -> dict[str, Any]:
    """Engine vs dnsperf on the harness topology's ClusterIP path: one topology, one run,
    ``repeats`` side-by-side pairs."""
    max0 = _conntrack_max()
    with topology(client_pods=pods) as topo:
        short_udp_timeouts(topo)
        if server_priority:
            # Our own servers only: serve before generating, so a starved server does not
            # drop what the generator sends (the generator lags instead, and that shows).
            for _, pid in _servers(topo):
                os.setpriority(os.PRIO_PROCESS, pid, server_priority)
        client0 = topo.plan.role("client")[0].ns
        res = side_by_side(
            lambda: with_server_cpu(
                topo,
                lambda: dnsperf(
                    client0, DNS_IP, SERVICE_NAME, dnsperf_seconds, outstanding=outstanding
                ),
                lambda d: d.get("queries_completed", 0) / 2,
            ),
            lambda r, t: with_server_cpu(
                topo,
                lambda: engine(topo, r, t, workers, max_in_flight=max(1, outstanding // 2)),
                lambda e: float(e["lookups"]),
            ),
            topo.flush_conntrack,
            repeats=repeats,
            rate=rate,
            offer=offer,
            seconds=dnsperf_seconds if rate is None else seconds,
        )
    max1 = _conntrack_max()
    return {
        "bench": "dns_engine",
        "path": "client pod -> node-1 (iptables DNAT+MASQUERADE, kube-dns ClusterIP "
        f"{DNS_IP}) -> node-2 -> CoreDNS pods",
        "cpus": os.cpu_count(),
        "load_avg_1m": os.getloadavg()[0],
        "nf_conntrack_max": [max0, max1],
        "server_nice": server_priority,
        "outstanding_queries": outstanding,
        **res,
        # the median pair, for the one-line figure
        "dnsperf": _median_run(res["runs"])["dnsperf"],
        "engine": _median_run(res["runs"])["engine"],
        "disturbed": any(r["engine"]["table_full_lines"] > 0 for r in res["runs"]) or max0 != max1,
    }


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return sorted(runs, key=lambda r: float(r["ratio"]))[len(runs) // 2]


def _sigterm(_sig: int, _frm: object) -> None:
    raise SystemExit(143)  # so the testbed's cleanup runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--rate",
        type=float,
        default=None,
        help="Lookups/s offered to the engine. Default: --offer times dnsperf's pair rate",
    )
    ap.add_argument("--offer", type=float, default=1.5, help="See --rate. Default: 1.5 (range > 0)")
    ap.add_argument("--seconds", type=float, default=5.0, help="Load duration. Default: 5")
    ap.add_argument("--workers", type=int, default=2, help="Engine processes. Default: 2")
    ap.add_argument("--pods", type=int, default=4, help="Client pod namespaces. Default: 4")
    ap.add_argument(
        "--repeats", type=int, default=5, help="Side-by-side pairs. Default: 5 (range >= 1)"
    )
    ap.add_argument(
        "--outstanding",
        type=int,
        default=200,
        help="Queries in flight: dnsperf -q, and the engine's lookups x 2. Default: 200",
    )
    ap.add_argument(
        "--server-nice",
        type=int,
        default=0,
        help="Nice value for the bench's own CoreDNS (0: leave it). Default: 0",
    )
    args = ap.parse_args()
    if args.repeats < 1 or args.offer <= 0 or args.outstanding < 2:
        ap.error("--repeats must be >= 1, --offer > 0 and --outstanding >= 2")
    signal.signal(signal.SIGTERM, _sigterm)
    lock = HostLock(LOCK_WAIT_S)
    lock.acquire()
    try:
        out = measure(
            args.rate,
            args.seconds,
            args.workers,
            args.pods,
            repeats=args.repeats,
            offer=args.offer,
            outstanding=args.outstanding,
            server_priority=args.server_nice,
        )
    finally:
        lock.release()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
