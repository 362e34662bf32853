"""A user's locustfile on the run path: its plan, its stats shaping, the result section and
the report table (Locust-free), and the runner's bad-input exits (in a child process)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from cthcommon.errors import BadInput
from harness.report.locust import locust_section
from harness.results.locust import locust_result
from harness.results.schema import PhaseResult
from harness.scenario.expect import Expectation
from loadgen.locust.endpoints import MAX_ERRORS, errors, locustfile_stats
from loadgen.locust.stats import histogram_percentile
from loadgen.locust.userplan import LocustfilePlan

SHOP = str(Path(__file__).resolve().parents[4] / "scenarios" / "locustfiles" / "shop.py")


def entry(name: str, method: str, times: dict[int, int], failures: int = 0) -> dict[str, Any]:
    """Locust's serialized StatsEntry: response_times is {rounded ms: count}."""
    return {
        "name": name,
        "method": method,
        "num_requests": sum(times.values()),
        "num_failures": failures,
        "response_times": {str(k): v for k, v in times.items()},
        "max_response_time": float(max(times)),
    }


ENTRIES = [
    entry("/", "GET", {1: 90, 3: 9, 40: 1}),
    entry("/cart", "POST", {2: 10, 2000: 5}, failures=5),
]
TOTAL = entry("Aggregated", "", {1: 90, 2: 10, 3: 9, 40: 1, 2000: 5}, failures=5)
ERRORS = {
    "a": {"method": "GET", "name": "/", "error": "ConnectTimeout()", "occurrences": 2},
    "b": {"method": "POST", "name": "/cart", "error": "ConnectTimeout()", "occurrences": 3},
}


def stats(**over: Any) -> Any:
    args: dict[str, Any] = {
        "locustfile": SHOP,
        "user_classes": ["KeepAliveShopper", "ClosingShopper"],
        "users": 10,
        "workers": 2,
        "total": TOTAL,
        "entries": list(reversed(ENTRIES)),
        "serialized_errors": ERRORS,
        "elapsed_s": 5.0,
        "new_connections": 37,
    }
    return locustfile_stats(**(args | over))


def test_stats_per_endpoint_from_locusts_histograms() -> None:
    s = stats()
    assert [(e["method"], e["name"]) for e in s["endpoints"]] == [("GET", "/"), ("POST", "/cart")]
    for e, raw in zip(s["endpoints"], ENTRIES, strict=True):
        hist = {float(k): v for k, v in raw["response_times"].items()}
        assert e["requests"] == raw["num_requests"]
        assert e["failures"] == raw["num_failures"]
        assert e["rps"] == pytest.approx(raw["num_requests"] / 5.0)
        assert e["latency_ms"]["p50"] == histogram_percentile(hist, 50)
        assert e["latency_ms"]["p99"] == histogram_percentile(hist, 99)
        assert e["latency_ms"]["max"] == raw["max_response_time"]
    # the slow failing POSTs are the tail of the cart endpoint, not of the front page
    assert s["endpoints"][1]["latency_ms"]["p99"] > s["endpoints"][0]["latency_ms"]["p99"]


def test_stats_totals_and_failures_by_error() -> None:
    s = stats()
    assert s["requests"] == TOTAL["num_requests"]
    assert s["failures"] == 5
    assert s["failure_rate"] == pytest.approx(5 / TOTAL["num_requests"])
    assert s["rps"] == pytest.approx(TOTAL["num_requests"] / 5.0)
    assert s["user_classes"] == ["ClosingShopper", "KeepAliveShopper"]
    assert [e["occurrences"] for e in s["errors"]] == [3, 2]  # most frequent first
    assert sum(e["occurrences"] for e in s["errors"]) == s["failures"]


def test_errors_of_one_grouped_endpoint_are_one_error_and_the_list_is_bounded() -> None:
    msg = "ConnectTimeout(MaxRetryError('pool: Max retries exceeded with url: /product/{} (x)'))"
    raw = {
        str(i): {"method": "GET", "name": "/product/[id]", "error": msg.format(i), "occurrences": 2}
        for i in range(30)
    }
    # seen on a full table: the connection object's address differs in every message
    seen = "ConnectTimeoutError(<HTTPConnection(host='10.96.0.20', port=80) at 0x7efe5{:07x}>, 'x')"
    raw |= {
        f"t{i}": {"method": "GET", "name": "/", "error": seen.format(i), "occurrences": 1}
        for i in range(30)
    }
    grouped = errors(raw)
    assert [(e["name"], e["occurrences"]) for e in grouped] == [("/product/[id]", 60), ("/", 30)]
    assert "/product/0" not in grouped[0]["error"]
    assert " at 0x" not in grouped[1]["error"]
    many = {
        str(i): {"method": "GET", "name": f"/p{i}", "error": "E", "occurrences": i + 1}
        for i in range(MAX_ERRORS + 5)
    }
    bounded = errors(many)
    assert len(bounded) == MAX_ERRORS
    assert bounded[0]["occurrences"] == MAX_ERRORS + 5  # most frequent first
    assert sum(e["occurrences"] for e in bounded) == sum(e["occurrences"] for e in many.values())
    assert bounded[-1]["error"] == "(6 other errors)"


def test_no_requests_is_no_rate_not_a_crash() -> None:
    empty = {"num_requests": 0, "num_failures": 0, "response_times": {}}
    s = stats(total=empty, entries=[], serialized_errors={}, elapsed_s=0.0)
    assert (s["requests"], s["failure_rate"], s["rps"]) == (0, 0.0, 0.0)
    assert s["latency_ms"]["p99"] == 0.0


def test_the_result_section_keeps_what_the_worker_measured() -> None:
    s = stats()
    r = locust_result(json.loads(json.dumps(s)))
    for key in ("requests", "failures", "failure_rate", "rps", "new_connections", "users"):
        assert r[key] == s[key]  # type: ignore[literal-required]
    assert r["endpoints"] == s["endpoints"]
    assert r["errors"] == s["errors"]
    assert "timeline" not in r


def test_expectations_can_name_locusts_measures() -> None:
    r = {"locust": locust_result(stats())}
    assert Expectation.parse("locust.failures > 0").evaluate(r) == (True, 5.0)
    assert Expectation.parse("locust.new_connections <= 40").evaluate(r) == (True, 37.0)


def test_the_report_table_shows_each_endpoint_and_error() -> None:
    loc = locust_result(stats())
    html = locust_section({"locust": loc})  # type: ignore[typeddict-item]
    assert "shop.py" in html
    for e in loc["endpoints"]:
        assert f"<td>{e['name']}</td><td class=n>{e['requests']}</td>" in html.replace(
            f"<td>{e['method']}</td>", ""
        )
    assert "ConnectTimeout()" in html
    assert f"{loc['new_connections']} new TCP connections for {loc['requests']} requests" in html
    no_locust: PhaseResult = {}  # type: ignore[typeddict-item]
    assert locust_section(no_locust) == ""


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"locustfile": "shop.py"}, "locustfile"),
        ({"locustfile": "/x/shop.txt"}, "locustfile"),
        ({"host": "http-server"}, "host"),
        ({"users": 0}, "users"),
        ({"spawn_rate": 0.0}, "spawn_rate"),
        ({"users": 2, "workers": 3}, "workers"),
        ({"workers": 2, "worker_netns": ("cth-a",)}, "worker_netns"),
        ({"workers": 1, "worker_netns": ("cth-a",)}, "master_host"),
    ],
)
def test_locustfile_plan_validation(over: dict[str, Any], field: str) -> None:
    with pytest.raises(BadInput) as e:
        LocustfilePlan(**({"locustfile": SHOP, "host": "10.96.0.20"} | over))
    assert e.value.field == field


def test_locustfile_plan_json_round_trip_and_unknown_fields() -> None:
    p = LocustfilePlan(
        locustfile=SHOP, host="10.96.0.20", users=4, workers=2,
        worker_netns=("cth-a", "cth-b"), master_host="10.244.1.2", user_classes=("X",),
    )  # fmt: skip
    assert LocustfilePlan.from_json(p.to_json()) == p
    with pytest.raises(BadInput) as e:
        LocustfilePlan.from_json(json.dumps({"locustfile": SHOP, "host": "1.2.3.4", "x": 1}))
    assert e.value.field == "plan-json"


def test_the_run_path_stays_locust_free() -> None:
    code = (
        "import sys, harness.plan.workerplan, harness.backends.netns.cluster, "
        "loadgen.worker, loadgen.locust.userplan, loadgen.locust.endpoints\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('locust', 'gevent')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("classes", "words"),
    [(("NoSuchShopper",), "no such User class"), ((), "defines no")],
)
def test_the_runner_exits_2_on_a_bad_locustfile(
    tmp_path: Path, classes: tuple[str, ...], words: str
) -> None:
    """Before any traffic: the classes are looked up in the file (child process: Locust)."""
    path = SHOP
    if not classes:
        empty = tmp_path / "empty.py"
        empty.write_text("from locust import HttpUser\n")  # imported, but abstract
        path = str(empty)
    plan = LocustfilePlan(locustfile=path, host="127.0.0.1", user_classes=classes)
    cp = subprocess.run(
        [sys.executable, "-m", "loadgen.locust.userrun", "--plan-json", plan.to_json()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert cp.returncode == 2, cp.stderr
    assert words in cp.stderr
