"""The natural-race verdict: only a failed insert is the race; a full table confounds it."""

from __future__ import annotations

import copy

from harness.results.build import race_result
from harness.results.schema import PhaseResult
from tests.sample_results import PhaseModel, build_phase

KERNEL = "6.18.44"


def _dns_only(m: PhaseModel) -> PhaseResult:
    p = build_phase(m)
    p["http"] = None
    return p


def _with_counters(
    p: PhaseResult, *, insert_failed: int = 0, drop: int = 0, clash: int = 0, missing: int = 0
) -> PhaseResult:
    q = copy.deepcopy(p)
    node = q["conntrack"]["nodes"][0]
    node["insert_failed"], node["drop"], node["clash_resolve"] = insert_failed, drop, clash
    q["dns"]["queries_unanswered"] = missing
    return q


def test_a_full_table_is_confounded_never_reproduced() -> None:
    # the model's short-lived HTTP fills a 2048-entry table: DNS replies go missing, drop rises
    full = _dns_only(PhaseModel("one-backend", conntrack_max=2048, new_conns_per_s=400))
    assert full["conntrack"]["drop"] > 0
    assert full["dns"]["queries_unanswered"] > 0
    race = race_result(full, KERNEL)
    assert race["verdict"].startswith("confounded: the table was full on node-1"), race
    assert f"drop {full['conntrack']['drop']}" in race["verdict"]
    # even with failed inserts on top, exhaustion makes the lost replies unattributable
    both = _with_counters(full, insert_failed=3, drop=full["conntrack"]["drop"], missing=9)
    assert race_result(both, KERNEL)["verdict"].startswith("confounded")


def test_the_sampled_peak_alone_marks_a_full_table_when_kmsg_is_unreadable() -> None:
    full = _dns_only(PhaseModel("one-backend", conntrack_max=2048, new_conns_per_s=400))
    for n in full["conntrack"]["nodes"]:
        n["table_full_lines"] = 0
    assert full["conntrack"]["nodes"][0]["peak_count"] >= 2048
    assert race_result(full, KERNEL)["verdict"].startswith("confounded")


def test_failed_inserts_with_missing_replies_reproduce_the_race() -> None:
    roomy = _dns_only(PhaseModel("one-backend", conntrack_max=262144, new_conns_per_s=0))
    assert roomy["conntrack"]["peak_count"] < 262144
    race = race_result(_with_counters(roomy, insert_failed=4, drop=4, missing=4), KERNEL)
    assert race["verdict"] == "reproduced: 4 replies missing, insert_failed 4, drop 4"
    assert race["insert_failed"]["node-1"] == 4
    assert race["kernel"] == KERNEL


def test_drops_without_a_failed_insert_are_not_called_the_race() -> None:
    roomy = _dns_only(PhaseModel("one-backend", conntrack_max=262144, new_conns_per_s=0))
    race = race_result(_with_counters(roomy, drop=7, missing=7), KERNEL)
    assert race["verdict"] == "inconclusive: 7 replies missing without a failed conntrack insert"


def test_resolved_clashes_with_nothing_lost() -> None:
    roomy = _dns_only(PhaseModel("one-backend", conntrack_max=262144, new_conns_per_s=0))
    race = race_result(_with_counters(roomy, clash=41_000), KERNEL)
    assert race["verdict"] == "kernel resolved 41000 clashes, 0 drops"
    quiet = race_result(_with_counters(roomy), KERNEL)
    assert quiet["verdict"] == "inconclusive: no clash observed, so the race was not exercised"
