"""Result fixtures for the report tests, built by tests.sample_results (no typed-in numbers)."""

from __future__ import annotations

import pytest

from harness.results.schema import RunResult
from tests.sample_results import PhaseModel, build_run, exhaustion_run, race_run


@pytest.fixture(scope="session")
def exhaustion() -> RunResult:
    return exhaustion_run()


@pytest.fixture(scope="session")
def race() -> RunResult:
    return race_run()


@pytest.fixture(scope="session")
def failing() -> RunResult:
    """A run whose remediation does not help, with two repeats of the baseline."""
    return build_run(
        "still-broken",
        [
            PhaseModel("baseline", expect=("dns.timeout_rate >= 0.1",)),
            PhaseModel("baseline", repeat_index=1, expect=("dns.timeout_rate >= 0.1",)),
            PhaseModel(
                "fqdn", remediations=("fqdn",), seed=9, expect=("dns.timeout_rate <= 0.001",)
            ),
        ],
    )
