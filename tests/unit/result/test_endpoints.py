"""Stale conntrack entries and the zero-endpoint window, computed without root from
``conntrack -L`` text, the events' timeline and the same-port client's rows."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from harness.results.diff import diff_runs, render
from harness.results.endpoints import (
    SETTLE_S,
    EndpointEvent,
    Flow,
    describe,
    endpoints_result,
    flows,
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
    assert flows(LISTING, SVC, 53)[:2] == [
        ("10.244.1.2", 41000, "10.244.2.2"),
        ("10.244.1.3", 52000, "10.244.2.3"),
    ]
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


CLIENTS = {"10.244.1.2": 41000, "10.244.1.3": 52000}
GLIBC: list[Flow] = [("10.244.1.3", 33000 + i, OLD[i % 2]) for i in range(5)]  # one-shot lookups


def _samples(states: dict[int, list[Flow]]) -> list[tuple[float, str, list[Flow]]]:
    return [(t + 0.03, "node-1", fl) for t, fl in states.items()]


def _client_flows(target: str | None) -> list[Flow]:
    return [] if target is None else [(ip, port, target) for ip, port in CLIENTS.items()]


def _udp(answered_before: bool, zero: tuple[int, int, int]) -> dict[str, list[list[float]]]:
    """Each pod: 20 a second; in seconds 5..18 ``zero`` = (answered, refused, silent)."""
    rows = []
    for s in range(28):
        rows.append([s, 20, *((20, 0, 0) if not 5 <= s < 19 or answered_before else zero)])
    return dict.fromkeys(CLIENTS, rows)


def _result(
    samples: list[tuple[float, str, list[Flow]]], udp: dict[str, list[list[float]]]
) -> dict:  # type: ignore[type-arg]
    return dict(
        endpoints_result(
            service="kube-system/kube-dns",
            cluster_ip=SVC,
            port=53,
            initial=set(OLD),
            events=EVENTS,  # type: ignore[arg-type]
            samples=samples,
            udp_by_pod=udp,
            udp_ports=CLIENTS,
            load_s=28,
            source="test",
        )
    )


def test_a_reconciler_that_skips_the_empty_service_leaves_stale_entries_and_blackholes() -> None:
    # each client's same-port entry stays DNATed to a deleted pod, refreshed by every packet
    kept = _client_flows(OLD[0]) + GLIBC
    states = dict.fromkeys(range(19), kept) | {s: _client_flows(NEW[0]) for s in (19, 20)}
    r = _result(_samples(states), _udp(False, (0, 0, 20)))
    (w,) = r["zero_windows"]
    assert w["judged_from_s"] == 6.0 + SETTLE_S
    assert w["stale_entries_max"] == 7 == r["stale_entries_max"]  # 2 clients + 5 lookups
    assert r["client_flows_stale_max"] == 2
    # judged from second 7 (after the rules and the settle) to 17 (18 is the next event)
    assert (w["sent"], w["blackholed"], w["refused"], w["rejected_silently"]) == (440, 440, 0, 0)
    assert r["blackholed_rate"] == 1.0
    # before the pods went, the same entries were not stale; after the scale-up neither
    assert r["timeline"][0][1] == 0
    assert r["timeline"][-1][1] == 0
    assert r["stale_by_node_max"] == {"node-1": 7}
    assert "at most 7 conntrack entries" in describe(r)  # type: ignore[arg-type]


def test_a_reconciler_that_clears_them_leaves_no_entry_and_the_reject_rule_answers() -> None:
    # one sample caught the entries before kube-proxy's sync: before the window is judged.
    # Then the clients' flows have no entry: each packet meets the reject rule, and the
    # kernel sends an ICMP error for one a second per client (icmp_ratelimit)
    states = {s: _client_flows(OLD[0]) + GLIBC for s in range(6)}
    states |= {s: [] for s in range(6, 19)}
    r = _result(_samples(states), _udp(False, (0, 1, 19)))
    assert (r["stale_entries_max"], r["client_flows_stale_max"]) == (0, 0)
    assert (r["sent"], r["refused"], r["rejected_silently"], r["blackholed"]) == (440, 22, 418, 0)
    assert r["blackholed_rate"] == 0.0


def test_a_second_without_a_sample_is_not_guessed() -> None:
    states = {s: [] for s in range(6, 19) if s != 10}
    r = _result(_samples(states), _udp(False, (0, 0, 20)))
    assert r["silent_other"] == 40  # second 10, both pods
    assert r["rejected_silently"] == 400


def test_without_a_zero_window_there_is_nothing_to_judge() -> None:
    r = endpoints_result(
        service="kube-system/kube-dns",
        cluster_ip=SVC,
        port=53,
        initial=set(OLD),
        events=[],
        samples=[(1.0, "node-1", _client_flows(OLD[0]))],
        udp_by_pod={},
        udp_ports=CLIENTS,
        load_s=10,
        source="test",
    )
    assert r["zero_windows"] == []
    assert (r["stale_entries_max"], r["sent"], r["blackholed_rate"]) == (0, 0, 0.0)
    assert "always had an endpoint" in describe(r)


def test_compare_shows_each_sides_stale_entries_and_where_the_queries_went() -> None:
    def run(verdict: str, **ep: int) -> dict[str, Any]:
        phase = {"name": "scale-to-zero", "verdict": verdict, "endpoints": ep}
        return {"scenario": "s", "phases": [phase], "environment": {}, "run_id": verdict}

    old = run("fail", stale_entries_max=116, client_flows_stale_max=2, sent=360, blackholed=360)
    new = run("pass", stale_entries_max=0, sent=320, refused=13, rejected_silently=307)
    d = diff_runs(old, new)  # type: ignore[arg-type]
    text = render(d)
    assert "scale-to-zero A: 116 stale entries (2 the clients')" in text
    assert "360 to a deleted pod" in text
    assert "13 refused, 0 to a deleted pod, 307 rejected at the node" in text
    (p,) = d.to_json()["phases"]
    assert p["a"]["endpoints"]["blackholed"] == 360
    assert p["b"]["endpoints"]["rejected_silently"] == 307
    # a phase without events shows none
    plain = run("pass")
    del plain["phases"][0]["endpoints"]
    assert "no endpoint" not in render(diff_runs(plain, plain))  # type: ignore[arg-type]


def test_each_window_says_when_the_same_port_clients_were_answered_again() -> None:
    r = _result(_samples({s: [] for s in range(6, 19)}), _udp(False, (0, 1, 19)))
    (w,) = r["zero_windows"]
    # the next event (the scale-up) at 18 s; both pods answered again in second 19
    assert w["answered_again_s"] == 2.0 == r["answered_again_s_max"]
    # one pod still unanswered when the load ends: it never recovered
    udp = _udp(False, (0, 0, 20))
    udp["10.244.1.2"] = [[s, 20, 20 if s < 5 else 0, 0, 0 if s < 5 else 20] for s in range(28)]
    r = _result(_samples({s: [] for s in range(6, 19)}), udp)
    assert r["zero_windows"][0]["answered_again_s"] is None
    assert r["answered_again_s_max"] is None


def test_compare_says_when_each_sides_clients_were_answered_again() -> None:
    def run(verdict: str, again: float | None) -> dict[str, Any]:
        ep = {"stale_entries_max": 0, "sent": 10, "answered_again_s_max": again}
        phase = {"name": "scale-to-zero", "verdict": verdict, "endpoints": ep}
        return {"scenario": "s", "phases": [phase], "environment": {}, "run_id": verdict}

    text = render(diff_runs(run("fail", None), run("pass", 2.0)))  # type: ignore[arg-type]
    assert "A: 0 stale entries" in text
    assert "a same-port client was not answered again before the load ended" in text
    assert "every same-port client answered again within 2.0 s of the next event" in text
