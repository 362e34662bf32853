"""``phases[].events`` and ``load.udp``: validated before anything runs (exit 2 naming the
field), planned, the topology sized for a scale-up's new pods, and refused on the cluster
backends."""

from __future__ import annotations

from typing import Any

import pytest

from cthcommon.errors import BadInput
from harness.backendcheck import check_cluster_fields
from harness.plan.phase import plan_phase, plan_run
from harness.plan.types import (
    KubeProxyRestartPlan,
    SamePortUDPPlan,
    ScalePlan,
    ServiceRecreatePlan,
)
from harness.plan.workerplan import worker_plan
from harness.scenario.expect import Expectation
from harness.scenario.loader import parse_scenario
from harness.scenario.model import Scenario
from loadgen.worker import PodSpec, WorkerPlan

pytestmark = pytest.mark.unit


def scenario(*phases: dict[str, Any], replicas: int = 2, udp: bool = True) -> Scenario:
    load: dict[str, Any] = {"duration_s": 20, "http": None, "dns": {"rate": 10}}
    if udp:
        load["udp"] = {"rate": 5}
    return parse_scenario(
        {
            "name": "e",
            "cluster": {"coredns": {"replicas": replicas}},
            "load": load,
            "phases": list(phases),
        }
    )


def scale(at_s: float, replicas: int, deployment: str = "coredns") -> dict[str, Any]:
    return {"at_s": at_s, "scale": {"deployment": deployment, "replicas": replicas}}


def restart(at_s: float, node: str) -> dict[str, Any]:
    return {"at_s": at_s, "restart_kube_proxy": {"node": node}}


def recreate(
    at_s: float, service: str = "kube-system/kube-dns", down_s: float = 2
) -> dict[str, Any]:
    return {"at_s": at_s, "recreate_service": {"service": service, "down_s": down_s}}


def test_restarts_and_recreates_are_planned_and_need_no_more_coredns_pods() -> None:
    s = scenario({"name": "r", "events": [restart(4, "node-2"), recreate(9, down_s=3)]})
    plan = plan_phase(s, s.phases[0])
    assert plan.events == (
        KubeProxyRestartPlan(4, "node-2"),
        ServiceRecreatePlan(9, "kube-system/kube-dns", 3),
    )
    assert [e.kind for e in s.phases[0].events] == ["restart_kube_proxy", "recreate_service"]
    assert plan_run(s).max_coredns_replicas == 2


def test_events_are_planned_in_order_and_size_the_coredns_pods() -> None:
    s = scenario({"name": "steady"}, {"name": "zero", "events": [scale(5, 0), scale(12, 3)]})
    assert plan_phase(s, s.phases[0]).events == ()
    assert plan_phase(s, s.phases[1]).events == (
        ScalePlan(5, "coredns", 0),
        ScalePlan(12, "coredns", 3),
    )
    # scaling 2 -> 0 -> 3 brings up 3 new pods (new IPs) beside the phase's own 2
    assert plan_run(s).max_coredns_replicas == 5
    only_down = scenario({"name": "z", "events": [scale(5, 0)]})
    assert plan_run(only_down).max_coredns_replicas == 2


@pytest.mark.parametrize(
    ("events", "field", "why"),
    [
        ([scale(5, 0, "nginx")], "phases[0].events[0].scale.deployment", "coredns"),
        ([scale(5, -1)], "phases[0].events[0].scale.replicas", "greater than or equal to 0"),
        ([scale(5, 9)], "phases[0].events[0].scale.replicas", "less than or equal to 8"),
        ([scale(20, 0)], "phases[0].events[0].at_s", "before the load ends"),
        ([scale(25, 0)], "phases[0].events[0].at_s", "duration_s 20"),
        ([scale(0, 0)], "phases[0].events[0].at_s", "greater than 0"),
        ([scale(8, 0), scale(5, 2)], "phases[0].events[1].at_s", "in time order"),
        ([{"at_s": 5}], "phases[0].events[0]", "exactly one of scale, restart_kube_proxy"),
        (
            [{**scale(5, 0), "restart_kube_proxy": {"node": "node-1"}}],
            "phases[0].events[0]",
            "got scale, restart_kube_proxy",
        ),
        ([restart(20, "node-1")], "phases[0].events[0].at_s", "before the load ends"),
        ([restart(5, "node-3")], "events[0].restart_kube_proxy.node", "'node-3' is not a node"),
        ([restart(5, "node-0")], "events[0].restart_kube_proxy.node", "['node-1', 'node-2']"),
        ([recreate(5, "default/http")], "events[0].recreate_service.service", "kube-dns"),
        ([recreate(20)], "phases[0].events[0].at_s", "before the load ends"),
        ([recreate(15, down_s=5)], "events[0].recreate_service.down_s", "before the load ends"),
        ([recreate(5, down_s=-1)], "events[0].recreate_service.down_s", "greater than or equal"),
        ([restart(8, "node-1"), recreate(5)], "phases[0].events[1].at_s", "in time order"),
        (
            [{"at_s": 5, "scale": {"deployment": "coredns", "replicas": 1}, "x": 1}],
            "events[0].x",
            "Extra",
        ),
    ],
)
def test_bad_events_are_bad_input_naming_the_field(
    events: list[dict[str, Any]], field: str, why: str
) -> None:
    with pytest.raises(BadInput) as e:
        scenario({"name": "zero", "events": events})
    assert field in e.value.field
    assert why in str(e.value)


def test_a_phase_has_a_rollout_or_events_not_both() -> None:
    with pytest.raises(BadInput) as e:
        scenario({"name": "z", "rollout": {"at_s": 3}, "events": [scale(5, 0)]})
    assert e.value.field == "phases[0].events"


def test_the_same_port_client_is_planned_into_the_worker_plan() -> None:
    s = scenario({"name": "z"})
    plan = plan_phase(s, s.phases[0])
    assert plan.load.udp == SamePortUDPPlan(
        rate=5, name="kube-dns.kube-system.svc.cluster.local", timeout_s=1.0
    )
    pods = [PodSpec("cth-a", "10.244.1.2", ""), PodSpec("cth-b", "10.244.1.3", "")]
    wp = worker_plan(plan, pods, [], dns_service_ip="10.96.0.10")
    assert wp.udp is not None
    assert [p.ip for p in wp.udp.pods] == ["10.244.1.2", "10.244.1.3"]
    assert (wp.udp.plan.target, wp.udp.plan.rate, wp.udp.plan.duration_s) == ("10.96.0.10", 5, 20)
    assert WorkerPlan.from_json(wp.to_json()) == wp  # the plan file round-trips
    with pytest.raises(BadInput) as e:  # a backend that gives no kube-dns address
        worker_plan(plan, pods, [])
    assert e.value.field == "load.udp"


def test_bad_same_port_client_settings_name_the_field() -> None:
    for udp, field in (({"rate": 0}, "load.udp.rate"), ({"name": "a b"}, "load.udp.name")):
        with pytest.raises(BadInput) as e:
            parse_scenario({"name": "e", "load": {"udp": udp}, "phases": [{"name": "p"}]})
        assert e.value.field == field


@pytest.mark.parametrize("backend", ["kind", "kubeconfig"])
def test_events_and_the_same_port_client_are_netns_only(backend: str) -> None:
    with pytest.raises(BadInput) as e:
        check_cluster_fields(backend, scenario({"name": "z", "events": [scale(5, 0)]}))
    assert e.value.field == "phases[0].events"
    with pytest.raises(BadInput) as e:
        check_cluster_fields(backend, scenario({"name": "z"}))
    assert e.value.field == "load.udp"
    check_cluster_fields(backend, scenario({"name": "z"}, udp=False))
    check_cluster_fields("netns", scenario({"name": "z", "events": [scale(5, 0)]}))
    for event, kind in (
        (restart(5, "node-1"), "restart_kube_proxy"),
        (recreate(5), "recreate_service"),
    ):
        with pytest.raises(BadInput) as e:
            check_cluster_fields(backend, scenario({"name": "z", "events": [event]}, udp=False))
        assert e.value.field == "phases[0].events"
        assert kind in str(e.value)
        assert "--backend netns" in str(e.value)


@pytest.mark.parametrize(
    "text",
    [
        "endpoints.stale_entries_max == 0",
        "endpoints.blackholed_rate <= 0.05",
        "udp.refused > 0",
        "endpoints.restart_entries_lost == 0",
        "endpoints.restart_unsynced_s_max <= 5",
        "endpoints.deleted_service_entries_max == 0",
        "endpoints.recovered_s_max <= 3",
    ],
)
def test_the_new_metrics_are_expectations(text: str) -> None:
    assert str(Expectation.parse(text)) == text
