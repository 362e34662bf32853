"""Result fixtures for the report tests, built by tests.sample_results (no typed-in numbers)."""

from __future__ import annotations

import pytest

from harness.results.schema import RunResult
from tests.sample_results import exhaustion_run, race_run, still_broken_run


@pytest.fixture(scope="session")
def exhaustion() -> RunResult:
    return exhaustion_run()


@pytest.fixture(scope="session")
def race() -> RunResult:
    return race_run()


@pytest.fixture(scope="session")
def failing() -> RunResult:
    """A run whose remediation does not help, with two repeats of the baseline."""
    return still_broken_run()
