"""Stale conntrack entries and the zero-endpoint window, computed without root from
``conntrack -L`` text, the events' timeline and the same-port client's rows."""

from __future__ import annotations

from collections import Counter

import pytest

from harness.results.endpoints import (
    SETTLE_S,
    EndpointEvent,
    describe,
    endpoints_result,
    reply_sources,
    stale_count,
    zero_windows,
)

pytestmark = pytest.mark.unit

SVC = "10.96.0.10"
OLD = ("10.244.2.2", "10.244.2.3")
NEW = ("10.244.2.4", "10.244.2.5")

# conntrack -L -p udp -d 10.96.0.10 --dport 53, as conntrack-tools 1.4.7 prints it
LISTING = """\
udp      17 118 src=10.244.1.2 dst=10.96.0.10 sport=41000 dport=53 src=10.244.2.2 dst=10.244.1.2 sport=53 dport=41000 [ASSURED] mark=0 use=1
udp      17 29 src=10.244.1.3 dst=10.96.0.10 sport=52000 dport=53 src=10.244.2.3 dst=10.244.1.3 sport=53 dport=52000 mark=0 use=1
udp      17 25 src=10.244.1.3 dst=10.96.0.10 sport=52001 dport=53 [UNREPLIED] src=10.96.0.10 dst=10.244.1.3 sport=53 dport=52001 mark=0 use=1
udp      17 25 src=10.244.1.3 dst=10.96.0.11 sport=52002 dport=53 src=10.244.2.2 dst=10.244.1.3 sport=53 dport=52002 mark=0 use=1
udp      17 25 src=10.244.1.3 dst=10.96.0.10 sport=52003 dport=5353 src=10.244.2.2 dst=10.244.1.3 sport=5353 dport=52003 mark=0 use=1
tcp      6 117 TIME_WAIT src=10.244.1.3 dst=10.96.0.10 sport=40000 dport=53 src=10.244.2.2 dst=10.244.1.3 sport=53 dport=40000 [ASSURED] mark=0 use=1
"""


def test_reply_sources_keeps_the_services_udp_entries_by_dnat_target() -> None:
    got = reply_sources(LISTING, SVC, 53)
    # other ClusterIP, other port and TCP are left out; an entry nothing DNATed keeps the VIP
    assert got == Counter({"10.244.2.2": 1, "10.244.2.3": 1, SVC: 1})


def test_stale_means_dnated_to_an_address_that_is_not_an_endpoint_now() -> None:
    src = reply_sources(LISTING, SVC, 53)
    assert stale_count(src, set(OLD), SVC) == 0
    assert stale_count(src, {OLD[0]}, SVC) == 1
    assert stale_count(src, set(), SVC) == 2  # the un-DNATed entry points at no pod
    assert stale_count(src, set(NEW), SVC) == 2


def ev(t: float, event: str, ip: str = "", pod: str = "") -> EndpointEvent:
    return EndpointEvent(t_s=t, event=event, pod=pod, ip=ip)


EVENTS = [
    {**ev(5.0, "scale", pod="coredns"), "replicas": 0},
    ev(5.1, "deleted", OLD[1], "coredns-1"),
    ev(5.2, "deleted", OLD[0], "coredns-0"),
    ev(5.4, "endpoints"),
    ev(6.0, "rules"),
    {**ev(18.0, "scale", pod="coredns"), "replicas": 2},
    ev(18.9, "ready", NEW[0], "coredns-2"),
    ev(19.2, "endpoints", ",".join(NEW)),
    ev(19.6, "rules", ",".join(NEW)),
]


def test_the_zero_window_runs_from_the_empty_slice_to_the_next_event() -> None:
    assert zero_windows(EVENTS, 28) == [(5.4, 6.0, 18.0)]  # type: ignore[arg-type]
    # scaled to 0 and never back: until the load ends; rules never seen: None
    only = [EVENTS[0], EVENTS[3]]
    assert zero_windows(only, 28) == [(5.4, None, 28)]  # type: ignore[arg-type]


def _samples(stale_per_s: dict[int, Counter[str]]) -> list[tuple[float, str, Counter[str]]]:
    return [(t + 0.3, "node-1", c) for t, c in stale_per_s.items()]


def _udp(blackholed: bool) -> list[list[float]]:
    rows = []
    for s in range(28):
        zero = 5 <= s < 19
        if not zero:
            rows.append([s, 40, 40, 0, 0])
        elif blackholed:
            rows.append([s, 40, 0, 0, 40])
        else:
            rows.append([s, 40, 0, 40 if s >= 6 else 20, 0 if s >= 6 else 20])
    return rows


def _result(samples: list[tuple[float, str, Counter[str]]], udp: list[list[float]]) -> dict:  # type: ignore[type-arg]
    return dict(
        endpoints_result(
            service="kube-system/kube-dns",
            cluster_ip=SVC,
            port=53,
            initial=set(OLD),
            events=EVENTS,  # type: ignore[arg-type]
            samples=samples,
            udp_timeline=udp,
            load_s=28,
            source="test",
        )
    )


def test_a_reconciler_that_skips_the_empty_service_leaves_stale_entries_and_blackholes() -> None:
    kept = Counter({OLD[0]: 1, OLD[1]: 1})  # each pod's same-port entry, refreshed
    samples = _samples(
        dict.fromkeys(range(0, 19), kept) | {s: Counter({NEW[0]: 2}) for s in (19, 20)}
    )
    r = _result(samples, _udp(blackholed=True))
    (w,) = r["zero_windows"]
    assert w["judged_from_s"] == 6.0 + SETTLE_S
    assert w["stale_entries_max"] == 2 == r["stale_entries_max"]
    # judged from second 7 (after the rules and the settle) to second 17 (18 is the next event)
    assert (w["sent"], w["blackholed"], w["refused"]) == (440, 440, 0)
    assert r["blackholed_rate"] == 1.0
    # before the pods went, the same entries were not stale; after the scale-up neither
    assert r["timeline"][0][1] == 0
    assert r["timeline"][-1][1] == 0
    assert r["stale_by_node_max"] == {"node-1": 2}
    assert "at most 2 conntrack entries" in describe(r)  # type: ignore[arg-type]


def test_a_reconciler_that_clears_them_leaves_none_and_the_clients_are_refused() -> None:
    # one sample caught the entries before kube-proxy's sync: before the window is judged
    samples = _samples(
        {s: Counter({OLD[0]: 1, OLD[1]: 1}) for s in range(0, 6)}
        | {s: Counter() for s in range(6, 19)}
    )
    r = _result(samples, _udp(blackholed=False))
    assert r["stale_entries_max"] == 0
    assert (r["sent"], r["refused"], r["blackholed"]) == (440, 440, 0)
    assert r["blackholed_rate"] == 0.0


def test_without_a_zero_window_there_is_nothing_to_judge() -> None:
    r = endpoints_result(
        service="kube-system/kube-dns",
        cluster_ip=SVC,
        port=53,
        initial=set(OLD),
        events=[],
        samples=[(1.0, "node-1", Counter({OLD[0]: 1}))],
        udp_timeline=[],
        load_s=10,
        source="test",
    )
    assert r["zero_windows"] == []
    assert (r["stale_entries_max"], r["sent"], r["blackholed_rate"]) == (0, 0, 0.0)
    assert "always had an endpoint" in describe(r)
