"""The classifier on simulated runs and on hand-built signal sets (seed 002's decision table);
advice skips what is done; "table full" lines are presence, not severity (issue 13 §2)."""

from __future__ import annotations

import pytest

from harness.judge.diagnosis import (
    REMEDIATION,
    Signals,
    classify,
    diagnose_phase,
    signals_from_phase,
)
from tests.sample_results import (
    PhaseModel,
    build_phase,
    exhaustion_run,
    overload_phase,
    race_run,
)


def test_exhaustion_baseline_is_exhaustion_and_remediations_are_none() -> None:
    run = exhaustion_run()
    base, *fixed = run["phases"]
    d = diagnose_phase(base)
    assert d.cause == "exhaustion"
    assert d.confidence == "high"
    assert not d.injected
    assert "nf_conntrack_max" in d.remediation
    assert any(
        f"{base['conntrack']['peak_count']}/{base['conntrack']['max']}" in e for e in d.evidence
    )
    for p in fixed:
        assert diagnose_phase(p).cause == "none", p["name"]


def test_injected_race_baseline_is_race_labelled_injected() -> None:
    base, *fixed = race_run()["phases"]
    d = diagnose_phase(base)
    assert d.cause == "insert-race"
    assert d.injected
    assert d.label == "insert-race (injected)"
    assert "single-request-reopen" in d.remediation
    assert any("INJECTED" in e for e in d.evidence)
    for p in fixed:
        assert diagnose_phase(p).cause == "none", p["name"]


def test_server_overload() -> None:
    p = overload_phase()
    assert p["server"]["received"] > p["server"]["answered"]
    d = diagnose_phase(p)
    assert d.cause == "server-overload"
    assert "CoreDNS" in d.remediation


def test_natural_race_from_counters() -> None:
    d = classify(
        Signals(
            conntrack_max=65536, peak_count=900, insert_failed=4, drop=4, lookups=80000, timeouts=4
        )
    )
    assert d.cause == "insert-race"
    assert not d.injected


def test_captured_same_port_pairs_reach_the_diagnosis() -> None:
    """run --pcap counts the unanswered pairs; the natural race with them is high confidence."""
    base = race_run()["phases"][0]
    base["injected"], base["faults"] = False, []
    base.pop("fault")
    node = base["conntrack"]["nodes"][0]
    base["conntrack"]["insert_failed"] = node["insert_failed"] = 3
    base["conntrack"]["drop"] = node["drop"] = 3
    base["dns"]["timeouts"] = 0
    assert signals_from_phase(base).same_port_unanswered is None
    assert diagnose_phase(base).confidence == "medium"  # counters only
    base["capture"] = {
        "file": "pcap/baseline.pcap",
        "tool": "tcpdump",
        "where": "client pods' eth0",
        "queries": 400,
        "same_port_pairs": 200,
        "unanswered_pairs": 3,
        "unanswered_queries": 3,
        "kernel_dropped": 0,
    }
    d = diagnose_phase(base)
    assert (d.cause, d.confidence) == ("insert-race", "high")
    assert "capture: 3 same-port A/AAAA pairs lost an answer" in d.evidence


def test_clash_resolved_is_none_with_evidence() -> None:
    d = classify(
        Signals(conntrack_max=65536, peak_count=900, clash_resolve=50_000, lookups=1000, timeouts=0)
    )
    assert d.cause == "none"
    assert any("resolved every clash" in e for e in d.evidence)


def test_injected_fault_without_race_signature() -> None:
    d = classify(
        Signals(injected=True, fault_kind="blackhole", fault_hits=12, timeouts=12, lookups=100)
    )
    assert d.cause == "injected-fault"
    assert d.injected


@pytest.mark.parametrize(
    ("signals", "cause"),
    [
        (Signals(conntrack_max=1000, peak_count=999, drop=5), "exhaustion"),
        (Signals(conntrack_max=1000, peak_count=500, table_full_lines=2), "exhaustion"),
        (Signals(conntrack_max=1000, peak_count=950), "none"),  # near full, not dropping
        (Signals(server_received=100, server_answered=100), "none"),
    ],
)
def test_decision_table_rows(signals: Signals, cause: str) -> None:
    d = classify(signals)
    assert d.cause == cause
    assert d.remediation == REMEDIATION[d.cause]


def test_near_full_without_drops_warns() -> None:
    d = classify(Signals(conntrack_max=1000, peak_count=950))
    assert d.confidence == "low"
    assert any("watch it" in e for e in d.evidence)


def test_resolver_notes() -> None:
    d = classify(Signals(resolver_flags=frozenset({"single-request-reopen"}), ndots=5))
    assert any("single-request-reopen" in e for e in d.evidence)
    assert any("ndots:5" in e for e in d.evidence)


def test_table_full_is_presence_not_a_count() -> None:
    few = classify(Signals(conntrack_max=1000, peak_count=1000, drop=5, table_full_lines=1))
    many = classify(Signals(conntrack_max=1000, peak_count=1000, drop=5, table_full_lines=400))
    assert few.cause == many.cause == "exhaustion"
    assert few.confidence == many.confidence
    assert few.evidence == many.evidence  # the number of lines is not shown as a measure
    assert not any("table_full_lines=" in e for e in many.evidence)
    assert any("rate-limits" in e for e in many.evidence)


def test_no_time_wait_advice_to_a_phase_that_has_30() -> None:
    p = build_phase(
        PhaseModel(
            "sysctls-too-small",
            remediations=("conntrack-sysctls: nf_conntrack_max=2048, tcp_timeout_time_wait=30",),
        )
    )
    d = diagnose_phase(p)
    assert d.cause == "exhaustion"
    assert "shorten nf_conntrack_tcp_timeout_time_wait" not in d.remediation
    assert "already 30 s" in d.remediation
    base = diagnose_phase(build_phase(PhaseModel("baseline")))
    assert "shorten nf_conntrack_tcp_timeout_time_wait" in base.remediation


def test_live_time_wait_read_from_the_sysctl() -> None:
    s = Signals(conntrack_max=100, peak_count=100, drop=3, time_wait_s=20)
    assert "already 20 s" in classify(s).remediation
    s = Signals(conntrack_max=100, peak_count=100, drop=3, time_wait_s=120)
    assert "shorten nf_conntrack_tcp_timeout_time_wait" in classify(s).remediation


def test_musl_waits_shown_apart_from_timeouts() -> None:
    p = build_phase(PhaseModel("musl", conntrack_max=65536, new_conns_per_s=5))
    p["dns"]["timeouts"] = 3
    p["dns"]["waited"] = 10
    d = diagnose_phase(p)
    assert any("3/" in e and "7 more waited for a resend" in e for e in d.evidence)
