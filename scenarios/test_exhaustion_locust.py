"""The shipped Locust example end to end on the netns backend: the user's own locustfile runs
in the client pods, its stats land in result.json and the HTML report, and the kernel agrees
with what Locust says about connections."""

from __future__ import annotations

import pytest

from harness.pytest_plugin import RunScenario, assert_expectations
from harness.report.html import render_html

pytestmark = [pytest.mark.kernel, pytest.mark.scenario]


def test_locustfile_exhaustion_and_keep_alive(run_scenario: RunScenario) -> None:
    result = run_scenario("scenarios/exhaustion-locust.yaml")
    closing, keep = result["phases"]
    html = render_html(result)
    for p in (closing, keep):
        loc = p.get("locust")
        assert loc is not None, p["name"]
        assert p["http"] is None  # the locustfile replaced the raw client
        assert loc["workers"] == 2  # one Locust worker per client pod
        assert loc["requests"] > 0
        assert sum(e["requests"] for e in loc["endpoints"]) == loc["requests"]
        assert sum(e["failures"] for e in loc["endpoints"]) == loc["failures"]
        assert sum(e["occurrences"] for e in loc["errors"]) == loc["failures"]
        assert {e["name"] for e in loc["endpoints"]} == {"/", "/product/[id]", "/cart"}
        # the report shows Locust's own counts
        assert f"{loc['new_connections']} new TCP connections for {loc['requests']} requests" in (
            html
        )
        for e in loc["endpoints"]:
            assert f"<td>{e['name']}</td><td class=n>{e['requests']}</td>" in html
        # the harness cannot know a locustfile's connection rate in advance: no aged warm-up,
        # and the steady state is not claimed
        ss = p["steady_state"]
        assert ss["warmup"]["method"] == "none"
        assert ss["verdict"] == "inconclusive"
        assert ss["reason"].startswith("not modelled: the HTTP load is a locustfile")
    c, k = closing["locust"], keep["locust"]
    # Connection: close -> one TCP connection per request (a connect that timed out on a
    # full table is a request that failed); keep-alive -> about one per user
    assert c["new_connections"] >= c["requests"] - c["users"]
    assert k["new_connections"] <= 2 * k["users"]
    assert k["requests"] > 10 * k["new_connections"]
    # the table filled with the closing customers' TIME_WAIT entries: new flows were dropped,
    # Locust saw failed requests and DNS timed out
    assert closing["conntrack"]["drop"] > 0
    assert c["failures"] > 0
    assert any("Timeout" in e["error"] or "timed out" in e["error"] for e in c["errors"])
    # grouped per endpoint and kind: no row of "N other errors" for the same timeout
    assert not any(e["error"].endswith("other errors)") for e in c["errors"]), c["errors"]
    assert keep["conntrack"]["drop"] == 0
    assert k["failures"] == 0
    assert_expectations(result)
