"""A CoreDNS rollout under load on the real parts: new pods with new IPs take over through
the real EndpointSlice controller and kube-proxy, the old ones serve through lameduck and
exit, the lookups meanwhile are counted, and the next phase runs on the scenario's pods."""

from __future__ import annotations

import pytest

from harness.pytest_plugin import RunScenario, assert_expectations

pytestmark = [pytest.mark.kernel, pytest.mark.scenario]


def test_coredns_rollout_under_load(run_scenario: RunScenario) -> None:
    result = run_scenario("scenarios/coredns-rollout.yaml")
    steady, roll, after = result["phases"]
    assert "rollout" not in steady
    r = roll["rollout"]
    events = r["events"]
    started = [e for e in events if e["event"] == "start"]
    deleted = [e for e in events if e["event"] == "deleted"]
    # every running pod replaced, one at a time, by a pod with a new IP
    old_ips = {e["ip"] for e in deleted}
    assert len(started) == len(deleted) == 2
    assert not {e["ip"] for e in started} & old_ips
    order = [e["event"] for e in events if e["event"] in ("start", "ready", "deleted")]
    assert order == ["start", "ready", "deleted"] * 2  # surge one, then retire one
    # the old replicas served through kubeadm's lameduck and exited by themselves
    gone = {e["pod"]: e["event"] for e in events if e["event"] in ("exited", "killed")}
    assert gone == {e["pod"]: "exited" for e in deleted}
    # at_s counts from the load generator's start; its first lookups follow within a second
    assert r["at_s"] - 1.5 <= r["started_s"] <= r["at_s"] + 0.5
    assert not r["outlasted_load"]
    assert r["window"]["lookups"] > 0
    # both generations answered: the traffic moved to the new pods during the phase
    per_pod = roll["server"]["per_pod"]
    new = {e["pod"] for e in started}
    assert all(per_pod[p]["answered"] > 0 for p in new), per_pod
    assert all(per_pod[e["pod"]]["answered"] > 0 for e in deleted), per_pod
    # every query the clients got an answer to was received by a server, old or new, counted
    # in the pods' nft counters (a replica that exits takes its metrics with it); the only
    # extra is each new replica's loop-plugin probe to itself, which CoreDNS's loop plugin
    # re-sends every 2 s for up to 30 s until one exchange succeeds (a slow start gave 2
    # probes each: 4,504 received for 4,500 answered)
    assert r["server_counts"].startswith("nft counters")
    answered_at_client = roll["dns"]["queries_sent"] - roll["agreement"]["client_unanswered"]
    received = roll["server"]["received"]
    probes = 15 * len(started)  # the loop plugin's tries: 30 s / 2 s per new replica
    assert answered_at_client <= received <= answered_at_client + probes, roll["server"]
    # undone after the phase: the next phase's answers come from the scenario's pods only
    assert set(after["server"]["per_pod"]) == set(steady["server"]["per_pod"])
    assert_expectations(result)
