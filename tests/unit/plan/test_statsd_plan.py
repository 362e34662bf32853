"""``load.statsd``: validated before anything runs (exit 2 naming the field), planned into
the worker plan with the kube-dns address, and refused on the cluster backends."""

from __future__ import annotations

from typing import Any

import pytest

from cthcommon.errors import BadInput
from harness.backendcheck import check_cluster_fields
from harness.plan.phase import plan_phase
from harness.plan.types import StatsdLoadPlan
from harness.plan.workerplan import worker_plan
from harness.scenario.loader import parse_scenario
from harness.scenario.model import Scenario
from loadgen.worker import PodSpec, WorkerPlan

pytestmark = pytest.mark.unit


def scenario(statsd: dict[str, Any] | None) -> Scenario:
    load: dict[str, Any] = {"duration_s": 20, "http": None, "dns": {"rate": 10}}
    if statsd is not None:
        load["statsd"] = statsd
    return parse_scenario({"name": "s", "load": load, "phases": [{"name": "p"}]})


def test_the_sender_is_planned_into_the_worker_plan() -> None:
    s = scenario({"rate": 7})
    plan = plan_phase(s, s.phases[0])
    assert plan.load.statsd == StatsdLoadPlan(rate=7)
    pods = [PodSpec("cth-a", "10.244.1.2", ""), PodSpec("cth-b", "10.244.1.3", "")]
    wp = worker_plan(plan, pods, [], dns_service_ip="10.96.0.10")
    assert wp.statsd is not None
    assert [p.ip for p in wp.statsd.pods] == ["10.244.1.2", "10.244.1.3"]
    p = wp.statsd.plan
    assert (p.target, p.port, p.rate, p.duration_s) == ("10.96.0.10", 53, 7, 20)
    assert WorkerPlan.from_json(wp.to_json()) == wp
    with pytest.raises(BadInput) as e:  # a backend that gives no kube-dns address
        worker_plan(plan, pods, [])
    assert e.value.field == "load.statsd"
    assert plan_phase(scenario(None), scenario(None).phases[0]).load.statsd is None


@pytest.mark.parametrize("bad", [{"rate": 0}, {"rate": 1001}, {"rate": 5, "port": 8125}])
def test_bad_sender_settings_name_the_field(bad: dict[str, Any]) -> None:
    with pytest.raises(BadInput) as e:
        scenario(bad)
    assert e.value.field.startswith("load.statsd")


@pytest.mark.parametrize("backend", ["kind", "kubeconfig"])
def test_the_sender_is_netns_only(backend: str) -> None:
    with pytest.raises(BadInput) as e:
        check_cluster_fields(backend, scenario({"rate": 5}))
    assert e.value.field == "load.statsd"
    check_cluster_fields("netns", scenario({"rate": 5}))
