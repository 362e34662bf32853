"""A counter the backend cannot read is said to be unmeasured, not reported as a measured 0:
result.json lists it under ``unavailable``, the agreement does not add it up, and the
diagnosis's evidence does not quote it (a kind run used to say "DNS servers: received 0,
answered 0" and "0 DNS packets entered a node and never left it")."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.results.build import build_phase_result
from tests.unit.steady.test_window import near_limit, phase_measurement, the_phase

pytestmark = pytest.mark.unit

UNAVAILABLE = {
    "server_counters": "the DNS pods' own counts are not read on this backend",
    "node_dns_counters": "per-node DNS packet counters are not installed on cluster nodes",
}


def _result(unavailable: dict[str, str] | None):  # type: ignore[no-untyped-def]
    m = near_limit()
    rows = [[float(s), 25.0, 20.0] for s in range(20)]
    pm = phase_measurement(m, 20, rows, aged=True)
    if unavailable is not None:
        pm = replace(pm, observed=replace(pm.observed, unavailable=unavailable))
    return build_phase_result(the_phase(["dns.lookups >= 1"], 20), 0, pm)


def test_unmeasured_counters_are_listed_and_not_quoted_as_zero() -> None:
    r = _result(UNAVAILABLE)
    assert r["unavailable"] == UNAVAILABLE
    assert "not measured on this backend" in r["agreement"]["explained"]
    assert "dropped inside the nodes" not in r["agreement"]["explained"]
    evidence = " | ".join(r["diagnosis"]["evidence"])
    assert "DNS servers: received" not in evidence
    assert "entered a node and never left it" not in evidence


def test_measured_counters_are_added_up_and_quoted() -> None:
    r = _result(None)
    assert r["unavailable"] == {}
    assert "dropped inside the nodes" in r["agreement"]["explained"]
    assert "DNS servers: received 0, answered 0" in " | ".join(r["diagnosis"]["evidence"])
