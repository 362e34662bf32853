"""Locust-free parts of loadgen.locust: schedules, plan, stats conversion, import isolation."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cthcommon.errors import BadInput
from loadgen.locust.plan import LocustPlan
from loadgen.locust.schedule import BurstIdle, Ramp, schedule_from_dict, ticks
from loadgen.locust.stats import from_locust, histogram_percentile, merge_counts, to_http_result


def test_burst_idle_tick_sequence() -> None:
    seq = ticks(BurstIdle(users=20, burst_s=2, idle_s=1, cycles=2, spawn_rate=50), every_s=0.5)
    users = [tick[0] if tick else None for _, tick in seq]
    assert users == [20, 20, 20, 20, 0, 0, 20, 20, 20, 20, 0, 0, None]
    assert seq[-1][0] == 6.0


def test_ramp_up_steps_then_holds_then_stops() -> None:
    seq = ticks(Ramp(start_users=0, end_users=10, ramp_s=5, hold_s=2, step_s=1), every_s=1)
    assert [tick[0] if tick else None for _, tick in seq] == [0, 2, 4, 6, 8, 10, 10, None]


def test_ramp_down() -> None:
    seq = ticks(Ramp(start_users=9, end_users=3, ramp_s=3, step_s=1), every_s=1)
    assert [tick[0] if tick else None for _, tick in seq] == [9, 7, 5, None]


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "square"},
        {"kind": "burst-idle", "users": 0, "burst_s": 1, "idle_s": 1},
        {"kind": "ramp", "start_users": 1, "end_users": 2, "ramp_s": 0},
        {"kind": "ramp", "start_users": 1, "end_users": 2, "ramp_s": 1, "bogus": 1},
    ],
)
def test_bad_shapes_are_bad_input(spec: dict[str, object]) -> None:
    with pytest.raises(BadInput):
        schedule_from_dict(spec)


def test_plan_json_round_trip_and_validation() -> None:
    plan = LocustPlan(host="10.96.0.20", user="pooled", pool_size=3, rate=90, users=50)
    again = LocustPlan.from_json(plan.to_json())
    assert again == plan
    assert plan.effective_users == 3  # a pooled user is one keep-alive connection
    assert plan.per_user_rate() == pytest.approx(30)
    with pytest.raises(BadInput) as e:
        LocustPlan.from_json(json.dumps({"host": "10.0.0.1", "usres": 3}))
    assert e.value.field == "plan-json"
    with pytest.raises(BadInput) as e:
        LocustPlan(host="10.0.0.1", workers=2, worker_netns=["cth-a", "cth-b"])
    assert e.value.field == "master_host"
    with pytest.raises(BadInput):
        LocustPlan(host="10.0.0.1", workers=2, worker_netns=["cth-a"], master_host="10.0.0.2")
    with pytest.raises(BadInput):
        LocustPlan(host="10.0.0.1", shape={"kind": "ramp"})


def test_histogram_percentile() -> None:
    hist = {1.0: 90, 10.0: 9, 100.0: 1}
    assert [histogram_percentile(hist, q) for q in (50, 90, 99, 100)] == [1.0, 1.0, 10.0, 100.0]
    assert histogram_percentile({}, 50) == 0.0


def test_from_locust_converts_serialized_total() -> None:
    start = 1_700_000_000
    total = {
        "num_requests": 10,
        "num_failures": 2,
        "response_times": {"1": 5, "2": 3, "40": 2},
        "max_response_time": 41.5,
        "start_time": start + 0.3,
        "num_reqs_per_sec": {start: 4, start + 2: 6},
        "num_fail_per_sec": {start + 2: 2},
    }
    conns = merge_counts([[start, 3], [start, 1], [start + 2, 6]])
    errors = {"k1": {"error": "ConnectionRefusedError()", "occurrences": 2}}
    s = from_locust(
        total, user="short-lived", workers=0, elapsed_s=2.0, new_connections=10,
        conns_per_s=conns, errors=errors,
    )  # fmt: skip
    assert s["timeline"] == [[0, 4, 0, 4], [1, 0, 0, 0], [2, 6, 2, 6]]
    assert (s["requests"], s["failures"], s["failure_rate"]) == (10, 2, 0.2)
    assert s["latency_ms"] == {"p50": 1.0, "p90": 40.0, "p99": 40.0, "max": 41.5}
    assert s["rps"] == 5.0
    assert s["errors"] == {"ConnectionRefusedError()": 2}
    assert to_http_result(s)["new_connections"] == 10


def test_importing_the_locust_free_modules_never_imports_locust_or_gevent() -> None:
    code = (
        "import sys, harness, loadgen.http.rawclient, "
        "loadgen.locust.plan, loadgen.locust.stats, loadgen.locust.launch, "
        "loadgen.locust.schedule\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert "locust" not in sys.modules
    assert "gevent" not in sys.modules


def test_locust_shapes_tick_with_a_fake_clock() -> None:
    """The real LoadTestShape subclasses, driven in a child process (they import Locust)."""
    code = (
        "import json\n"
        "from loadgen.locust.shapes import shape_for\n"
        "from loadgen.locust.schedule import BurstIdle, Ramp\n"
        "out = []\n"
        "for sched in (BurstIdle(users=5, burst_s=1, idle_s=1, cycles=1), "
        "Ramp(start_users=2, end_users=6, ramp_s=2, step_s=1)):\n"
        "    shape = shape_for(sched)\n"
        "    seq = []\n"
        "    for t in (0.0, 0.5, 1.0, 1.5, 2.0):\n"
        "        shape.get_run_time = lambda t=t: t\n"
        "        tick = shape.tick()\n"
        "        seq.append(tick[0] if tick else None)\n"
        "    out.append([type(shape).__name__, seq])\n"
        "print(json.dumps(out))\n"
    )
    cp = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(cp.stdout.strip().splitlines()[-1]) == [
        ["BurstIdleShape", [5, 5, 0, 0, None]],
        ["RampShape", [2, 2, 4, 4, None]],
    ]
