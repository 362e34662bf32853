"""Phases pooled over repeats, remediations against their baseline, and what a phase that
checks nothing is shown as (:mod:`harness.judge.summary`)."""

from __future__ import annotations

from harness.judge.summary import NO_EXPECTATION, remediation_verdicts, summarize
from tests.sample_results import race_run, still_broken_run, unchecked_run


def test_summary_pools_repeats() -> None:
    failing = still_broken_run()
    sums = summarize(failing)
    assert [s.name for s in sums] == ["baseline", "fqdn"]
    base = sums[0]
    phases = [p for p in failing["phases"] if p["name"] == "baseline"]
    assert base.repeats == 2
    assert base.lookups == sum(p["dns"]["lookups"] for p in phases)
    assert base.timeouts == sum(p["dns"]["timeouts"] for p in phases)


def test_remediation_pairs_follow_injected_flag() -> None:
    vs = remediation_verdicts(summarize(race_run()))
    assert [(v.before.name, v.after.name) for v in vs] == [
        ("baseline-race", "single-request-reopen"),
        ("baseline-race", "nodelocal-dns"),
    ]
    for v in vs:
        assert v.comparison.outcome == "fixed"


def test_measured_phase_is_not_a_pass() -> None:
    run = unchecked_run()
    base = run["phases"][0]
    assert base["dns"]["timeout_rate"] > 0.1  # the simulated table really overflowed
    assert base["verdict"] == "pass"
    assert base["expectations"] == []
    s = summarize(run)
    assert s[0].shown == NO_EXPECTATION
    assert s[1].shown == "pass"
