"""The DNS engine on real namespaces: pacing, round-robin, per-process resolver state."""

from __future__ import annotations

import asyncio
import os
from collections import Counter

import pytest

from bench.dnsbed import DROP_SECOND_QUERY_RULES, SERVICE_NAME, dns_bed
from harness.kernel.netns import run
from loadgen.dns.accounting import summarize
from loadgen.dns.engine import run_dns_load
from loadgen.dns.types import ClientPod, DNSPlan

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
]
FQDN = SERVICE_NAME + "."


@pytest.mark.parametrize("workers", [1, 2])
def test_paced_lookups_through_clusterip(workers: int) -> None:
    with dns_bed(3, clusterip=True) as bed:
        pods = [
            ClientPod(ns, ip, bed.resolv()) for ns, ip in zip(bed.pod_ns, bed.pod_ips, strict=True)
        ]
        plan = DNSPlan(
            rate=300,
            duration_s=1.0,
            names=["my-service.default", "example.org"],
            resolver="glibc",
            workers=workers,
        )
        seen: list[tuple[int, int]] = []
        records = asyncio.run(run_dns_load(pods, plan, progress=lambda d, t: seen.append((d, t))))
    assert len(records) == 300
    assert Counter(r.pod for r in records) == dict.fromkeys(bed.pod_ns, 100)
    # names alternate per full round of pods: answer (2 pairs) and NXDOMAIN (4 pairs)
    by_name = Counter((r.name, r.outcome, r.queries_sent) for r in records)
    assert by_name == {
        ("my-service.default", "answer", 4): 150,
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
    with dns_bed(1, clusterip=False) as bed:
        run(["sysctl", "-qw", "net.netfilter.nf_conntrack_acct=1"], netns=bed.server_ns)
        run(["nft", "-f", "-"], netns=bed.server_ns, input_=DROP_SECOND_QUERY_RULES)
        pods = [ClientPod(bed.pod_ns[0], bed.pod_ips[0], bed.resolv("timeout:1"))]
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
