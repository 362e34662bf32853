"""How the CLI counts phases (validate, run's first line, compare's summary) (pure)."""

from __future__ import annotations

import pytest

from harness.wording import phases_text

pytestmark = pytest.mark.unit


def test_one_phase_is_singular() -> None:
    assert [phases_text(n) for n in (0, 1, 2, 11)] == [
        "0 phases",
        "1 phase",
        "2 phases",
        "11 phases",
    ]
