"""Both backend families build their worker plans from the same phase plan."""

from __future__ import annotations

import json

from harness.backends.kube.dnsconfig import NamespaceMap
from harness.backends.kube.podplans import ClientTarget, worker_plans
from harness.plan.phase import plan_phase
from harness.plan.workerplan import worker_plan
from harness.scenario.loader import parse_scenario
from loadgen.http.plan import HTTPTarget
from loadgen.worker import PodSpec, WorkerPlan

RESOLV = "nameserver 10.96.0.10\nsearch default.svc.cluster.local\noptions ndots:5\n"


def scn(names: list[str], remediations: list[object] | None = None):  # type: ignore[no-untyped-def]
    return parse_scenario(
        {
            "name": "t",
            "load": {
                "duration_s": 2,
                "http": {"rate": 400, "max_in_flight": 100},
                "dns": {"rate": 40, "names": names},
            },
            "phases": [{"name": "p", "remediations": remediations or []}],
        }
    )


def test_netns_one_worker_and_kube_one_per_pod_share_the_same_load() -> None:
    s = scn(["http-server"], ["pooling", "fqdn"])
    plan = plan_phase(s, s.phases[0])
    pods = [PodSpec(f"ns{i}", f"10.244.1.{i + 2}", RESOLV) for i in range(4)]
    one = worker_plan(plan, pods, [HTTPTarget("10.96.0.20", netns=p.netns) for p in pods])
    nsmap = NamespaceMap("default", "cth-r1", "cluster.local")
    clients = [ClientTarget(f"client-{i}", f"10.244.1.{i + 2}", RESOLV) for i in range(4)]
    per_pod = worker_plans(plan, nsmap, clients, "10.96.0.20")
    assert one.dns is not None
    assert one.http is not None
    assert one.dns.plan.rate == 40
    assert one.http.plan.mode == "pooled"
    assert one.dns.plan.names == ["http-server.default.svc.cluster.local."]
    assert len(per_pod) == 4
    for i, wp in enumerate(per_pod):
        assert wp.pod == f"client-{i}"
        assert wp.phase == "p"
        assert wp.dns is not None
        assert wp.http is not None
        assert wp.dns.pods == (PodSpec(None, clients[i].ip, RESOLV),)
        assert wp.dns.plan.names == ["http-server.cth-r1.svc.cluster.local."]
        assert wp.http.plan.mode == "pooled"
        assert wp.http.plan.max_in_flight == 25
    assert sum(wp.dns.plan.rate for wp in per_pod if wp.dns) == one.dns.plan.rate
    assert sum(wp.http.plan.rate for wp in per_pod if wp.http) == one.http.plan.rate


def test_n_names_are_split_between_pods_without_overlap() -> None:
    s = scn(["u{n}.example.org.", "http-server"])
    plan = plan_phase(s, s.phases[0])
    nsmap = NamespaceMap("default", "cth-r1", "cluster.local")
    clients = [ClientTarget(f"c{i}", f"10.0.0.{i}", RESOLV) for i in range(3)]
    per_pod = worker_plans(plan, nsmap, clients, "10.96.0.20")
    generated = [
        [n for n in wp.dns.plan.names if n.startswith("u")] for wp in per_pod if wp.dns is not None
    ]
    flat = [n for names in generated for n in names]
    assert len(flat) == len(set(flat)) == 80  # 40/s x 2 s, each looked up by one pod only
    assert all(names for names in generated)
    # the other names keep their place in every pod's cycle
    assert all(wp.dns.plan.names[1] == "http-server" for wp in per_pod if wp.dns is not None)


def test_worker_plan_json_round_trip_is_the_wire_format() -> None:
    s = scn(["http-server"])
    plan = plan_phase(s, s.phases[0])
    wp = worker_plan(
        plan, [PodSpec(None, "10.0.0.2", RESOLV)], [HTTPTarget("10.96.0.20")], pod="client-0"
    )
    wire = json.loads(json.dumps(wp.to_json()))
    assert wire["pod"] == "client-0"
    assert wire["dns"]["pods"] == [{"netns": None, "ip": "10.0.0.2", "resolv": RESOLV}]
    assert wire["http"]["targets"] == [{"netns": None, "ip": "10.96.0.20", "port": 80}]
    assert wire["http"]["plan"]["workers"] == 1
    assert WorkerPlan.from_json(wire) == wp


def test_a_worker_given_a_start_time_begins_its_load_then() -> None:
    """kube launches every pod's worker through its own ``kubectl exec`` (1.9-2.8 s here): a
    shared start time makes the pods' loads begin together, not staggered by their starts."""
    import asyncio
    import time

    from loadgen.worker import run_plan

    start_at = time.monotonic() + 0.4
    plan = WorkerPlan(duration_s=0.1, start_at_monotonic=start_at)
    back = WorkerPlan.from_json(json.loads(json.dumps(plan.to_json())))
    assert back.start_at_monotonic == start_at
    out = asyncio.run(run_plan(back))
    assert out["started_monotonic"] >= start_at
    assert WorkerPlan.from_json({"duration_s": 1}).start_at_monotonic is None
    t0 = time.monotonic()
    late = asyncio.run(run_plan(WorkerPlan(duration_s=0.1, start_at_monotonic=t0 - 5)))
    assert late["started_monotonic"] - t0 < 0.2  # a start time already past: at once
