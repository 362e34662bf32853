"""The aged warm-up's schedule: chunk by chunk, the kind's timeout set on every node before
its flows open, longest first, and put back afterwards (flows and sysctls faked)."""

from __future__ import annotations

from typing import Any

import pytest

from harness.steady import warmup
from harness.steady.model import SteadyState, Timeouts, dns_flows, http_flows

NODES = ("node-a", "node-b")
TARGETS = warmup.WarmupTargets(
    client_ns=("pod-1", "pod-2"),
    node_ns=NODES,
    http_ip="10.96.0.20",
    dns_ip="10.96.0.10",
    dns_name="http-server.default.svc.cluster.local.",
)


class FakeGuard:
    def __init__(self, values: dict[tuple[str, str], str]) -> None:
        self.values = values
        self.calls: list[tuple[str, str, str]] = []

    def set(self, key: str, value: int | str, netns: str | None = None) -> None:
        assert netns is not None
        self.values[(netns, key)] = str(value)
        self.calls.append((netns, key, str(value)))


def test_chunks_set_the_timeout_on_every_node_and_restore_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tw, udp = (
        "net.netfilter.nf_conntrack_tcp_timeout_time_wait",
        "net.netfilter.nf_conntrack_udp_timeout",
    )
    values = {(ns, k): v for ns in NODES for k, v in ((tw, "20"), (udp, "10"))}
    guard = FakeGuard(values)
    opened: list[tuple[str, int, dict[str, str]]] = []

    def fake(kind: str) -> Any:
        async def fill(t: warmup.WarmupTargets, n: int) -> tuple[int, int]:
            key = tw if kind == "http" else udp
            opened.append((kind, n, {ns: values[(ns, key)] for ns in t.node_ns}))
            return n, 0

        return fill

    monkeypatch.setattr(warmup, "_http_fill", fake("http"))
    monkeypatch.setattr(warmup, "_dns_fill", fake("dns"))
    monkeypatch.setattr(warmup, "read", lambda key, ns: values[(ns, key)])
    t = Timeouts(tcp_time_wait=20, udp=10)
    model = SteadyState(tuple(http_flows("short-lived", 150, 8, t) + dns_flows(20, 1.0, t)), 4096)
    report = warmup.warm_up(model, TARGETS, guard, startup_s=0.5)  # type: ignore[arg-type]

    flows = {f["kind"]: f for f in report["flows"]}
    assert flows["http-short-lived"]["wanted"] == 3000
    assert flows["http-short-lived"]["opened"] == 3000
    assert flows["dns-udp"]["opened"] == 200
    http = [o for o in opened if o[0] == "http"]
    assert len(http) == 20  # one chunk per second of TIME_WAIT
    per_chunk = [int(o[2]["node-a"]) for o in http]
    assert all(o[2]["node-a"] == o[2]["node-b"] for o in opened)  # every node alike
    assert per_chunk == flows["http-short-lived"]["chunk_timeouts_s"]
    assert per_chunk[0] > per_chunk[-1] >= 1  # longest first
    # what is left when the load starts spreads over [0, 20): the first chunk also waits
    # for every chunk after it, so it gets more than 20 s
    assert per_chunk[0] > 20
    # put back on every node
    assert all(values[(ns, tw)] == "20" for ns in NODES)
    assert all(values[(ns, udp)] == "10" for ns in NODES)
    assert report["method"] == "aged-fill"
    assert "not measured" in report["label"]


def test_nothing_to_warm(monkeypatch: pytest.MonkeyPatch) -> None:
    guard = FakeGuard({})
    pooled = SteadyState(tuple(http_flows("pooled", 800, 8, Timeouts())), 4096)
    report = warmup.warm_up(pooled, TARGETS, guard)  # type: ignore[arg-type]
    assert report["flows"] == []
    assert guard.calls == []
