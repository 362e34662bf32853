"""Seed 002 on the netns backend: the A/AAAA race (INJECTED window) and what fixes it, plus
what the kernel does with the natural race."""

from __future__ import annotations

import re

import pytest

from harness.pytest_plugin import RunScenario, assert_expectations

pytestmark = [pytest.mark.kernel, pytest.mark.scenario]

SHORT = {
    "duration_s": 6,
    "http": None,
    "dns": {"rate": 100, "resolver": "glibc", "names": ["http-server", "api.example.com"]},
}


def test_injected_race_resolver_remediations_INJECTED(run_scenario: RunScenario) -> None:
    result = run_scenario("scenarios/race.yaml")
    assert_expectations(result)
    by = {p["name"]: p for p in result["phases"]}
    assert all(p["injected"] for p in by.values())
    base = by["baseline"]
    assert base["diagnosis"]["cause"] == "insert-race"
    assert base["diagnosis"]["injected"] is True
    # the rule's hits are the lost AAAA answers, and each costs one full timeout
    assert base["fault"]["hits"] >= base["dns"]["full_timeout_waits"] * 0.9
    for name in ("single-request-reopen", "single-request", "nodelocal"):
        assert by[name]["dns"]["full_timeout_waits"] == 0, name
        assert by[name]["diagnosis"]["cause"] == "none", name
    # FQDN and ndots:2 cut the number of pairs, but each remaining pair still races
    cmp = {c["phase"]: c for c in result["comparisons"] if c["metric"] == "dns.timeout_rate"}
    for name in ("fqdn", "ndots-2"):
        assert 0 < by[name]["dns"]["full_timeout_rate"] < base["dns"]["full_timeout_rate"]
        assert cmp[name]["sentence"].startswith("improved"), cmp[name]["sentence"]
    assert cmp["single-request-reopen"]["sentence"].startswith("fixed")


def test_musl_ignores_single_request_reopen_nodelocal_fixes_INJECTED(
    run_scenario: RunScenario,
) -> None:
    result = run_scenario(
        "scenarios/race-musl.yaml", load={**SHORT, "dns": {**SHORT["dns"], "resolver": "musl"}}
    )
    assert_expectations(result)


@pytest.mark.parametrize(
    "path", ["scenarios/race-natural.yaml", "scenarios/race-natural-nomasq.yaml"]
)
def test_natural_race_is_reported_in_the_issue_vocabulary(
    run_scenario: RunScenario, path: str
) -> None:
    result = run_scenario(
        path,
        load={
            "duration_s": 5,
            "http": None,
            "dns": {
                "rate": 4000,
                "workers": 2,
                "resolver": "glibc",
                "names": ["http-server.default.svc.cluster.local."],
            },
        },
    )
    for p in result["phases"]:
        assert not p["injected"]
        race = p["race"]
        assert race["kernel"] == result["environment"]["kernel"]
        assert race["pairs_sent"] >= 10_000
        verdict = race["verdict"]
        assert re.match(
            r"^(reproduced: |kernel resolved \d+ clashes, 0 drops$|inconclusive: )", verdict
        ), verdict
        lost = sum(race["insert_failed"].values()) + sum(race["drop"].values())
        if verdict.startswith("reproduced"):
            assert race["replies_missing"] > 0
            assert lost > 0
        if verdict.startswith("kernel resolved"):
            assert race["replies_missing"] == 0
            assert lost == 0
        print(f"{result['scenario']}/{p['name']}: {verdict} ({race['pairs_sent']} pairs)")
