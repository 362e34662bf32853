"""A scenario's ``load.http: {locustfile: ...}``: validation, the phase plan, the worker plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cthcommon.errors import BadInput
from harness.backends.kube.dnsconfig import NamespaceMap
from harness.backends.kube.podplans import ClientTarget, worker_plans
from harness.plan.phase import plan_phase
from harness.plan.workerplan import worker_plan
from harness.scenario.loader import load_scenario, parse_scenario
from loadgen.http.plan import HTTPTarget
from loadgen.worker import PodSpec, WorkerPlan

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "scenarios" / "exhaustion-locust.yaml"
RESOLV = "nameserver 10.96.0.10\nsearch default.svc.cluster.local\noptions ndots:5\n"
SERVICE = "10.96.0.20"


@pytest.fixture
def locustfile(tmp_path: Path) -> Path:
    f = tmp_path / "files" / "app.py"
    f.parent.mkdir()
    f.write_text("from locust import HttpUser, task\n\nclass Shopper(HttpUser):\n    pass\n")
    return f


def scenario(base: Path, http: dict[str, Any], **phase: Any):  # type: ignore[no-untyped-def]
    data = {
        "name": "t",
        "load": {"duration_s": 3, "http": http, "dns": {"rate": 10}},
        "phases": [{"name": "p", **phase}],
    }
    return parse_scenario(data, base_dir=base)


def bad(base: Path, http: dict[str, Any], **phase: Any) -> BadInput:
    with pytest.raises(BadInput) as e:
        s = scenario(base, http, **phase)
        plan_phase(s, s.phases[0])
    assert e.value.exit_code == 2
    return e.value


def test_the_path_is_resolved_against_the_scenario_file(tmp_path: Path, locustfile: Path) -> None:
    s = scenario(tmp_path, {"locustfile": "files/app.py", "users": 5})
    assert s.load.http is not None
    assert s.load.http.locustfile == str(locustfile)


def test_the_shipped_example_names_its_own_locustfile() -> None:
    s = load_scenario(EXAMPLE)
    for phase in s.phases:
        load = s.phase_load(phase).http
        assert load is not None
        assert load.locustfile == str(ROOT / "scenarios" / "locustfiles" / "shop.py")


@pytest.mark.parametrize(
    ("http", "field", "words"),
    [
        ({"locustfile": "files/missing.py"}, "load.http.locustfile", "not found"),
        ({"locustfile": "files/app.txt"}, "load.http.locustfile", "Python file"),
        ({"locustfile": "files/app.py", "users": 0}, "load.http.users", ""),
        ({"locustfile": "files/app.py", "users": 1001}, "load.http.users", ""),
        ({"locustfile": "files/app.py", "spawn_rate": 0}, "load.http.spawn_rate", ""),
        ({"locustfile": "files/app.py", "user_classes": []}, "load.http.user_classes", ""),
        ({"users": 5}, "load.http.users", "only with a locustfile"),
        ({"spawn_rate": 5}, "load.http.spawn_rate", "only with a locustfile"),
    ],
)
def test_bad_locust_fields_are_named(
    tmp_path: Path, locustfile: Path, http: dict[str, Any], field: str, words: str
) -> None:
    e = bad(tmp_path, http)
    assert e.field == field
    assert words in str(e)


def test_pooling_cannot_change_a_locustfile(tmp_path: Path, locustfile: Path) -> None:
    e = bad(tmp_path, {"locustfile": "files/app.py"}, remediations=["pooling"])
    assert e.field == "phases[0].remediations"


def test_the_plan_has_locust_instead_of_the_raw_client(tmp_path: Path, locustfile: Path) -> None:
    s = scenario(tmp_path, {"locustfile": "files/app.py", "users": 7, "user_classes": ["Shopper"]})
    plan = plan_phase(s, s.phases[0])
    assert plan.load.http is None
    assert plan.load.locust is not None
    assert plan.load.locust.locustfile == str(locustfile)
    assert plan.load.locust.users == 7
    assert plan.load.locust.spawn_rate == 7.0  # default: every user within a second
    assert plan.load.locust.user_classes == ("Shopper",)
    assert plan.load.dns is not None


def test_the_raw_client_stays_the_default(tmp_path: Path) -> None:
    s = scenario(tmp_path, {"rate": 100})
    plan = plan_phase(s, s.phases[0])
    assert plan.load.locust is None
    assert plan.load.http is not None


def pods(n: int) -> list[PodSpec]:
    return [PodSpec(f"cth-r-pod{i}", f"10.244.1.{i + 2}", RESOLV) for i in range(n)]


def _worker_plan(tmp_path: Path, n_pods: int, users: int) -> WorkerPlan:
    s = scenario(tmp_path, {"locustfile": "files/app.py", "users": users, "spawn_rate": 2})
    ps = pods(n_pods)
    return worker_plan(
        plan_phase(s, s.phases[0]),
        ps,
        [HTTPTarget(SERVICE, netns=p.netns) for p in ps],
        locust_target=SERVICE,
    )


def test_netns_spreads_locust_workers_over_the_client_pods(
    tmp_path: Path, locustfile: Path
) -> None:
    wp = _worker_plan(tmp_path, 3, users=9)
    assert wp.http is None
    assert wp.locust is not None
    lp = wp.locust.plan
    assert (lp.host, lp.port, lp.users, lp.spawn_rate) == (SERVICE, 80, 9, 2.0)
    assert lp.duration_s == wp.duration_s == 3
    assert lp.workers == 3
    assert lp.worker_netns == tuple(p.netns for p in pods(3))
    assert lp.master_host == pods(3)[0].ip
    assert wp.locust.netns == pods(3)[0].netns


@pytest.mark.parametrize(("n_pods", "users"), [(1, 5), (4, 1)])
def test_one_locust_process_when_one_pod_or_one_user(
    tmp_path: Path, locustfile: Path, n_pods: int, users: int
) -> None:
    wp = _worker_plan(tmp_path, n_pods, users=users)
    assert wp.locust is not None
    assert wp.locust.plan.workers == 0
    assert wp.locust.plan.worker_netns == ()
    assert wp.locust.plan.master_host is None
    assert wp.locust.netns == pods(1)[0].netns


def test_never_more_workers_than_users(tmp_path: Path, locustfile: Path) -> None:
    wp = _worker_plan(tmp_path, 4, users=2)
    assert wp.locust is not None
    assert wp.locust.plan.workers == 2


def test_the_worker_plan_survives_its_json_form(tmp_path: Path, locustfile: Path) -> None:
    wp = _worker_plan(tmp_path, 2, users=4)
    again = WorkerPlan.from_json(json.loads(json.dumps(wp.to_json())))
    assert again == wp


def test_a_cluster_backend_refuses_a_locustfile_as_bad_input(
    tmp_path: Path, locustfile: Path
) -> None:
    s = scenario(tmp_path, {"locustfile": "files/app.py"})
    clients = [ClientTarget(f"client-{i}", f"10.244.1.{i + 2}", RESOLV) for i in range(2)]
    with pytest.raises(BadInput) as e:
        worker_plans(
            plan_phase(s, s.phases[0]),
            NamespaceMap("default", "cth-r1", "cluster.local"),
            clients,
            SERVICE,
        )
    assert e.value.field == "load.http.locustfile"


def test_a_locustfile_that_does_not_parse_is_bad_input(tmp_path: Path, locustfile: Path) -> None:
    locustfile.write_text("class Shopper(HttpUser:\n")
    e = bad(tmp_path, {"locustfile": "files/app.py"})
    assert e.field == "load.http.locustfile"
    assert "not valid Python" in str(e)


def test_a_user_class_the_file_does_not_define_is_named(tmp_path: Path, locustfile: Path) -> None:
    e = bad(tmp_path, {"locustfile": "files/app.py", "user_classes": ["Shopper", "Nobody"]})
    assert e.field == "load.http.user_classes"
    assert "Nobody" in str(e)
    assert "Shopper" in str(e)  # what it does define
