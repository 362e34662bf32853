"""The DNS engine on the harness's netns topology: pacing, round-robin, per-process resolver
state, and the first-timeout drain."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections import Counter

import pytest

from bench.topo import DNS_IP, SERVICE_FQDN, topology
from cthcommon.netns import run
from cthcommon.resolvconf import ResolvConf
from loadgen.dns.accounting import summarize
from loadgen.dns.engine import run_dns_load
from loadgen.dns.types import ClientPod, DNSPlan

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    # bench.topo builds a harness topology outside a run: queue on the host lock like a run
    pytest.mark.usefixtures("host_lock"),
]
FQDN = SERVICE_FQDN
SEARCH = "default.svc.cluster.local svc.cluster.local cluster.local"
DROP_TABLE = "cth_test_drop"


def resolv(server: str, *options: str) -> ResolvConf:
    opts = " ".join(("ndots:5", *options))
    return ResolvConf.parse(f"nameserver {server}\nsearch {SEARCH}\noptions {opts}\n")


def drop_rules(match: str) -> str:
    """For a CoreDNS pod: drop the queries ``match`` selects on their way in."""
    return f"""table inet {DROP_TABLE} {{
  chain input {{
    type filter hook input priority filter; policy accept;
    udp dport 53 {match} counter drop
  }}
}}
"""


# The 2nd query of a conntrack flow: the AAAA of a same-socket pair (and of a same-socket
# A-then-AAAA), never a query that is the first or the third+ on its socket. Deterministic,
# unlike the real race, so every run meets the same drops. Needs nf_conntrack_acct=1.
DROP_SECOND_QUERY = drop_rules("ct original packets 2")


@pytest.mark.parametrize("workers", [1, 2])
def test_paced_lookups_through_clusterip(workers: int) -> None:
    with topology(client_pods=3) as topo:
        clients = topo.plan.role("client")
        pods = [ClientPod(p.ns, p.ip, resolv(DNS_IP)) for p in clients]
        plan = DNSPlan(
            rate=300,
            duration_s=1.0,
            names=["http-server.default", "example.org"],
            resolver="glibc",
            workers=workers,
        )
        seen: list[tuple[int, int]] = []
        records = asyncio.run(run_dns_load(pods, plan, progress=lambda d, t: seen.append((d, t))))
    assert len(records) == 300
    assert Counter(r.pod for r in records) == dict.fromkeys([p.ns for p in clients], 100)
    # names alternate per full round of pods: answer (2 pairs) and NXDOMAIN (4 pairs)
    by_name = Counter((r.name, r.outcome, r.queries_sent) for r in records)
    assert by_name == {
        ("http-server.default", "answer", 4): 150,
        ("example.org", "nxdomain", 8): 150,
    }
    starts = sorted(r.t_start for r in records)
    assert starts[-1] == pytest.approx(1.0 - 1 / 300, abs=0.2)
    s = summarize(records, timeout_s=5.0)
    assert s["timeouts"] == 0
    assert s["queries_per_lookup"] == pytest.approx(6.0)
    assert seen
    assert seen[-1] == (300, 300)


def test_fallback_is_sticky_per_process_not_per_pod() -> None:
    with topology(client_pods=1, coredns=1) as topo:
        server = topo.plan.role("coredns")[0]
        run(["sysctl", "-qw", "net.netfilter.nf_conntrack_acct=1"], netns=server.ns)
        run(["nft", "-f", "-"], netns=server.ns, input_=DROP_SECOND_QUERY)
        client = topo.plan.role("client")[0]
        pods = [ClientPod(client.ns, client.ip, resolv(server.ip, "timeout:1"))]
        # Lookups 1.25 s apart, so each sees its process's state after the previous one.
        plan = DNSPlan(
            rate=0.8, duration_s=7.4, names=[FQDN], resolver="glibc", lookups_per_process=3
        )
        records = asyncio.run(run_dns_load(pods, plan))
    # Under "drop the 2nd query of a flow": a fresh process pays (pair), its 2nd lookup pays
    # again (sequential on one socket -> escalates to reopen), its 3rd is free. Real glibc
    # does exactly this (see test_glibc_capture).
    assert [r.full_timeout_waits for r in records] == [1, 1, 0, 1, 1, 0]
    assert [len(r.source_ports) for r in records] == [1, 3, 2, 1, 3, 2]


def test_first_timeout_drain_gives_up_only_after_a_full_wait() -> None:
    """Every query dropped: with drain "first-timeout" the run ends about one timeout after
    the last start (not timeout * attempts * candidates), every lookup is counted, and each
    given-up one has waited a full timeout and says so (outcome "unfinished")."""
    with topology(client_pods=2, coredns=1) as topo:
        server = topo.plan.role("coredns")[0]
        run(["nft", "-f", "-"], netns=server.ns, input_=drop_rules(""))
        pods = [
            ClientPod(p.ns, p.ip, resolv(DNS_IP, "timeout:1")) for p in topo.plan.role("client")
        ]
        plan = DNSPlan(
            rate=40, duration_s=1.0, names=["http-server"], resolver="glibc", drain="first-timeout"
        )
        t = time.monotonic()
        records = asyncio.run(run_dns_load(pods, plan))
        wall = time.monotonic() - t
    assert len(records) == 40
    assert {r.outcome for r in records} == {"unfinished"}
    assert all(r.full_timeout_waits >= 1 and r.latency_s >= 1.0 for r in records)
    # the full drain would wait 2 attempts x (3 search candidates + as-is: stops after the
    # first timeout, then as-is) = 4 s per lookup; first-timeout ends ~1 s after the last start
    assert wall < 1.0 + 1.0 + 1.0
    s = summarize(records, timeout_s=1.0)
    assert s["unfinished"] == s["timeouts"] == 40
    assert s["failed"] == 0


def test_first_timeout_drain_waits_out_musls_short_resends() -> None:
    """musl resends every timeout/attempts (1 s here): one such wait is not a full timeout, so
    the drain must not give up on the lookup then; every lookup is a timeout only after 2 s."""
    with topology(client_pods=2, coredns=1) as topo:
        server = topo.plan.role("coredns")[0]
        run(["nft", "-f", "-"], netns=server.ns, input_=drop_rules(""))
        pods = [
            ClientPod(p.ns, p.ip, resolv(DNS_IP, "timeout:2", "attempts:2"))
            for p in topo.plan.role("client")
        ]
        plan = DNSPlan(
            rate=40, duration_s=1.0, names=["http-server"], resolver="musl", drain="first-timeout"
        )
        records = asyncio.run(run_dns_load(pods, plan))
    assert len(records) == 40
    assert {r.outcome for r in records} <= {"timeout", "unfinished"}
    assert all(r.latency_s >= 2.0 - 0.05 for r in records)
    s = summarize(records, timeout_s=2.0)
    assert s["timeouts"] == s["waited"] == 40


def test_cares_clients_share_one_port_while_lookups_are_in_flight() -> None:
    """c-ares on the engine: one channel per client process, its lookups in flight share one
    socket. CoreDNS answers nothing (an nft drop), so every lookup started within the first
    second is still waiting when the next starts: per pod, all their first queries leave
    from one port, through the ClusterIP's DNAT; retries after the first timeout do not."""
    with topology(client_pods=2, coredns=1) as topo:
        server = topo.plan.role("coredns")[0]
        run(["nft", "-f", "-"], netns=server.ns, input_=drop_rules(""))
        pods = [ClientPod(p.ns, p.ip, resolv(DNS_IP)) for p in topo.plan.role("client")]
        plan = DNSPlan(
            rate=40,
            duration_s=1.0,
            names=[FQDN],
            resolver="c-ares",
            lookups_per_process=1000,
            drain="first-timeout",
        )
        records = asyncio.run(run_dns_load(pods, plan))
    assert len(records) == 40
    assert {r.resolver for r in records} == {"c-ares"}
    assert {r.outcome for r in records} == {"unfinished"}
    for pod in {r.pod for r in records}:
        mine = [r for r in records if r.pod == pod]
        first = {a.port for r in mine for a in r.attempts if a.t_sent < 0.5}
        assert len(first) == 1, first  # 20 lookups, A and AAAA each: one socket
        later = [a.port for r in mine for a in r.attempts if a.t_sent >= 1.9]
        assert later
        assert first.isdisjoint(later)  # after a timeout: new sockets


IN_POD = """
import asyncio, json, sys
from cthcommon.resolvconf import ResolvConf
from loadgen.dns.engine import run_dns_load
from loadgen.dns.types import ClientPod, DNSPlan
pod = ClientPod(None, sys.argv[1], ResolvConf.parse(sys.argv[2]))
plan = DNSPlan(rate=20, duration_s=1.0, names=[sys.argv[3]], resolver="glibc",
               drain="first-timeout")
records = asyncio.run(run_dns_load([pod], plan))
print(json.dumps([[r.pod, r.outcome, r.full_timeout_waits] for r in records]))
"""


def test_first_timeout_drain_inside_a_pod() -> None:
    """As a cluster backend runs it: the engine inside the pod's own namespace (``netns``
    None: records name the pod by its IP). Nobody answers, so every lookup is cut after one
    full resolver timeout and recorded as unfinished (kind's workers crashed here with a
    KeyError on the pod's IP when they first drained this way)."""
    with topology(client_pods=1, coredns=1) as topo:
        server = topo.plan.role("coredns")[0]
        run(["nft", "-f", "-"], netns=server.ns, input_=drop_rules(""))
        client = topo.plan.role("client")[0]
        text = resolv(DNS_IP, "timeout:1", "attempts:3").render()  # a 3 s walk, cut at ~2 s
        cp = run([sys.executable, "-c", IN_POD, client.ip, text, FQDN], netns=client.ns)
    rows = json.loads(cp.stdout)
    assert len(rows) == 20
    assert {pod for pod, _, _ in rows} == {client.ip}
    assert {outcome for _, outcome, _ in rows} == {"unfinished"}
    # cut after one full timeout ("unfinished"), not waited through the whole search walk
    # (which ends as "timeout")
    assert all(waits >= 1 for _, _, waits in rows)
