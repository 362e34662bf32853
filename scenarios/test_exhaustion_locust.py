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
        # the harness cannot know a locustfile's connection rate in advance: no aged warm-up;
        # the steady state is modelled from the rates the kernel saw, and judged: each phase
        # is long enough to be judged on the window after its table got there
        ss = p["steady_state"]
        assert ss["warmup"]["method"] == "none"
        assert "observed rates" in ss.get("model_basis", ""), ss
        assert ss["reached"], ss["reason"]
        assert ss["judged_on"] == "window", ss["reason"]
        # from a natural start: steady only once the longest-lived entries could expire
        longest = max(f["lifetime_s"] for f in ss["flows"] if f["rate"] > 0)
        assert ss["time_to_steady_s"] >= longest, ss
        assert p["verdict"] == "pass", (p["name"], ss["reason"])
    c, k = closing["locust"], keep["locust"]
    # the closing customers' observed flow kind is TIME_WAIT: every connection Locust opened
    # was inserted in the node's table (refused SYNs add demand), so the modelled rate is not
    # below Locust's own count over the phase (10 %: the stat samples bracketing the load)
    flows = {f["kind"]: f for f in closing["steady_state"]["flows"]}
    tw = flows["observed-tcp-time-wait"]
    assert tw["lifetime_s"] == 120
    assert tw["rate"] * closing["duration_s"] >= 0.9 * c["new_connections"], (tw, c)
    assert closing["steady_state"]["occupancy_vs_max"] > 1  # it exhausts the table
    # keep-alive opens about one connection per user: nothing beyond its pool and DNS
    assert "observed-tcp-time-wait" not in {f["kind"] for f in keep["steady_state"]["flows"]}
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
