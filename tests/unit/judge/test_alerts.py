"""Seed 000's ConntrackTableNearFull over sampled series (:mod:`harness.judge.alerts`)."""

from __future__ import annotations

import pytest

from cthcommon.errors import BadInput
from harness.judge.alerts import (
    NEAR_FULL_ALERT,
    PRODUCTION_FOR_S,
    evaluate_near_full,
    near_full_fired,
    scaled_for_s,
)
from tests.sample_results import exhaustion_run, race_run


def _series(values: list[int], dt: float = 1.0) -> list[list[float]]:
    return [[i * dt, v] for i, v in enumerate(values)]


def test_fires_only_after_for_has_passed() -> None:
    above = [0, 50, 95, 95, 95, 95, 40]  # limit 100: above 0.9 from t=2 to t=5
    tl = _series(above)
    assert near_full_fired(tl, 100, 0.9, for_s=0)
    assert near_full_fired(tl, 100, 0.9, for_s=3)  # t=2..5 is 3 s
    assert not near_full_fired(tl, 100, 0.9, for_s=3.5)


def test_a_dip_resets_pending() -> None:
    tl = _series([95, 95, 80, 95, 95])
    assert not near_full_fired(tl, 100, 0.9, for_s=2)
    assert near_full_fired(tl, 100, 0.9, for_s=1)


def test_threshold_is_strict() -> None:
    assert not near_full_fired(_series([90, 90, 90]), 100, 0.9)
    with pytest.raises(BadInput, match="max"):
        near_full_fired(_series([1]), 0)


def test_scaled_for() -> None:
    assert scaled_for_s(20, 0.5) == pytest.approx(PRODUCTION_FOR_S * 20 / 1200)
    assert scaled_for_s(7200, 0.5) == PRODUCTION_FOR_S
    assert scaled_for_s(1, 0.5) == 1.0  # two samples at least
    with pytest.raises(BadInput):
        scaled_for_s(0)


def test_fires_in_exhaustion_baseline_only() -> None:
    run = exhaustion_run()
    fired = {p["name"]: evaluate_near_full(p)["fired"] for p in run["phases"]}
    assert fired == {"baseline": True, "pooling": False, "sysctls": False}
    # result.json records the same evaluation per phase
    for p in run["phases"]:
        assert p["alerts"][NEAR_FULL_ALERT]["fired"] == fired[p["name"]]
    base = run["phases"][0]["alerts"][NEAR_FULL_ALERT]
    assert base["nodes"] == ["node-1"]
    assert base["max_ratio"] > 0.9


def test_race_run_never_near_full() -> None:
    assert not any(evaluate_near_full(p)["fired"] for p in race_run()["phases"])
