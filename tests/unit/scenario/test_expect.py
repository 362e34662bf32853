from __future__ import annotations

import pytest

from cthcommon.errors import BadInput
from harness.scenario.expect import Expectation


def test_parse_and_evaluate_against_a_phase() -> None:
    e = Expectation.parse("dns.timeout_rate <= 0.001")
    assert e.evaluate({"dns": {"timeout_rate": 0.0}}) == (True, 0.0)
    assert e.evaluate({"dns": {"timeout_rate": 0.25}}) == (False, 0.25)
    assert str(e) == "dns.timeout_rate <= 0.001"


def test_missing_metric_is_a_failure_not_a_pass() -> None:
    assert Expectation.parse("conntrack.drop > 0").evaluate({"dns": {}}) == (False, None)


@pytest.mark.parametrize("text", ["dns.timeout_rate", "dns.nope < 1", "dns.lookups ~ 3", ""])
def test_bad_expectations_are_bad_input(text: str) -> None:
    with pytest.raises(BadInput):
        Expectation.parse(text)
