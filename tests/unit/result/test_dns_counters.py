"""Node DNS counters: a query delivered on the node (NodeLocal DNSCache) is not lost (pure)."""

from __future__ import annotations

from harness.results.build import dns_dropped


def test_locally_delivered_queries_are_not_dropped() -> None:
    assert dns_dropped({"dns_in": 7486, "dns_out": 0, "dns_local": 7486}) == 0


def test_queries_neither_forwarded_nor_delivered_are_dropped() -> None:
    assert dns_dropped({"dns_in": 100, "dns_out": 60, "dns_local": 10}) == 30
    assert dns_dropped({"dns_in": 5, "dns_out": 5}) == 0  # a cluster backend: no dns_local
