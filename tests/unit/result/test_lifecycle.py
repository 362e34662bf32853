"""A kube-proxy restart and a Service deleted and created again, built into a phase's
``endpoints`` result from the events' timeline, the node tables' samples and the DNS load's
rows, without root; and kube-proxy's last-sync gauge read from its metrics text."""

from __future__ import annotations

from typing import Any

import pytest

from harness.backends.netns.k8s.kubeproxy import last_sync
from harness.results.endpoints import SETTLE_S, EndpointEvent, Flow, describe, endpoints_result
from harness.results.endpoints import zero_windows as windows
from harness.results.lifecycle import recreates, restarts

pytestmark = pytest.mark.unit

SVC = "10.96.0.10"
PODS = ("10.244.2.2", "10.244.2.3")
CLIENTS = {"10.244.1.2": 41000, "10.244.1.3": 52000}


def ev(t: float, event: str, pod: str = "", ip: str = "", **counts: int) -> EndpointEvent:
    e = EndpointEvent(t_s=t, event=event, pod=pod, ip=ip)
    e.update(counts)  # type: ignore[typeddict-item]
    return e


RESTART = [
    ev(4.0, "kube-proxy-restart", "node-1", entries=40),
    ev(4.1, "kube-proxy-stopped", "node-1", pid=100, entries=40),
    ev(4.2, "kube-proxy-started", "node-1", pid=200),
    ev(5.3, "kube-proxy-synced", "node-1", entries=52, kept=38),
]
EPS = ",".join(PODS)
RECREATE = [
    ev(10.0, "service-delete", "kube-system/kube-dns"),
    ev(10.1, "service-deleted", "kube-system/kube-dns", SVC),
    ev(10.5, "endpoints"),
    ev(11.0, "rules"),
    ev(13.0, "service-created", "kube-system/kube-dns", SVC),
    ev(13.4, "endpoints", ip=EPS),
    ev(14.2, "rules", ip=EPS),
]


def test_a_restart_is_its_stop_start_and_first_sync_and_the_entries_it_kept() -> None:
    (r,) = restarts(RESTART)
    assert r == {
        "node": "node-1",
        "stopped_s": 4.1,
        "started_s": 4.2,
        "synced_s": 5.3,
        "unsynced_s": 1.2,
        "entries_before": 40,
        "entries_after": 52,
        "entries_kept": 38,
        "entries_lost": 2,
    }
    # a restart whose kube-proxy never synced again says so
    (never,) = restarts(RESTART[:3])
    assert (never["synced_s"], never["unsynced_s"], never["entries_lost"]) == (None, None, 40)


def _flows(target: str, glibc: int = 3) -> list[Flow]:
    out = [(ip, port, target) for ip, port in CLIENTS.items()]
    return out + [("10.244.1.3", 33000 + i, target) for i in range(glibc)]


def _recreate(samples: list[tuple[float, str, list[Flow]]], dns: list[list[float]]) -> Any:
    (c,) = recreates(
        RESTART + RECREATE, samples, udp_ports=CLIENTS, dns_timeline=dns, load_s=22,
        settle_s=SETTLE_S,
    )  # fmt: skip
    return c


DNS = [[s, 10, 10 if 10 <= s < 14 else 0] for s in range(22)]  # lookups timed out while gone


def test_entries_left_for_a_deleted_service_are_counted_while_it_does_not_exist() -> None:
    # the same-port clients' entries stay DNATed to the pods after the delete (a reconciler
    # that knows nothing of a deleted Service leaves them); one sample before the rules went
    left = [(t + 0.05, "node-1", _flows(PODS[0])) for t in range(8, 16)]
    c = _recreate(left, DNS)
    assert c["same_cluster_ip"] is True
    assert (c["cluster_ip_before"], c["cluster_ip_after"]) == (SVC, SVC)
    assert (c["deleted_s"], c["rules_gone_s"], c["created_s"], c["rules_back_s"]) == (
        10.1, 11.0, 13.0, 14.2,
    )  # fmt: skip
    # judged from 11.0 + settle to the create: the samples at 12.05 only
    assert (c["entries_while_deleted_max"], c["client_flows_while_deleted_max"]) == (5, 2)
    assert (c["lookups_while_deleted"], c["timeouts_while_deleted"]) == (30, 30)  # s 10-12
    assert c["recovered_s"] == 2.0  # second 14 is the first all answered: ends 2 s after 13.0

    # a reconciler that clears them: only un-DNATed entries (reply source = the ClusterIP)
    cleared = [(t + 0.05, "node-1", _flows(SVC if t >= 11 else PODS[0])) for t in range(8, 16)]
    c = _recreate(cleared, DNS)
    assert (c["entries_while_deleted_max"], c["client_flows_while_deleted_max"]) == (0, 0)

    # never answered again before the load ended
    c = _recreate(left, [[s, 10, 10 if s >= 10 else 0] for s in range(22)])
    assert c["recovered_s"] is None


def test_a_service_created_with_another_cluster_ip_says_so() -> None:
    moved = [*RECREATE[:4], ev(13.0, "service-created", "kube-system/kube-dns", "10.96.0.99")]
    (c,) = recreates(moved, [], udp_ports={}, dns_timeline=[], load_s=22, settle_s=SETTLE_S)
    assert (c["same_cluster_ip"], c["cluster_ip_after"]) == (False, "10.96.0.99")
    assert c["rules_back_s"] is None


def test_the_endpoints_result_carries_them_and_the_report_sentence_says_them() -> None:
    events = RESTART + RECREATE
    # the deleted Service's window ends when it is created again, not at the load's end
    assert windows(events, 22) == [(10.5, 11.0, 13.0)]
    samples = [(t + 0.05, "node-1", _flows(PODS[0])) for t in range(22)]
    r = endpoints_result(
        service="kube-system/kube-dns", cluster_ip=SVC, port=53, initial=set(PODS),
        events=events, samples=samples, udp_by_pod={}, udp_ports=CLIENTS, load_s=22,
        source="test", dns_timeline=DNS,
    )  # fmt: skip
    assert r["restart_entries_lost"] == 2
    assert r["restart_unsynced_s_max"] == 1.2
    assert r["deleted_service_entries_max"] == 5
    assert r["recovered_s_max"] == 2.0
    assert [x["node"] for x in r["restarts"]] == ["node-1"]
    text = describe(r)
    assert "kube-proxy on node-1 restarted at 4.1 s (stop to first rules sync: 1.2 s)" in text
    assert "38 of the Service's 40 entries on the node were kept, 2 gone" in text
    assert "at most 5 entries still DNATed for its ClusterIP while it did not exist" in text
    assert "created again (the same ClusterIP) at 13.0 s" in text
    # without these events: zeros, and nothing more said
    plain = endpoints_result(
        service="kube-system/kube-dns", cluster_ip=SVC, port=53, initial=set(PODS), events=[],
        samples=[], udp_by_pod={}, udp_ports={}, load_s=22, source="test",
    )  # fmt: skip
    assert (plain["restarts"], plain["recreates"], plain["recovered_s_max"]) == ([], [], 0.0)
    assert describe(plain).endswith("see the timeline.")


METRICS = """\
# HELP kubeproxy_sync_proxy_rules_last_timestamp_seconds [ALPHA] The last time proxy rules were successfully synced
# TYPE kubeproxy_sync_proxy_rules_last_timestamp_seconds gauge
kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"} 1.7812345678e+09
kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv6"} 0
kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds{ip_family="IPv4"} 1.79e+09
"""


def test_the_last_sync_is_read_from_kube_proxys_gauge() -> None:
    assert last_sync(METRICS) == 1.7812345678e09
    assert last_sync(METRICS.replace("1.7812345678e+09", "0")) is None  # no sync yet
    assert last_sync("") is None
