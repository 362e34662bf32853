"""The result-shape comparison the backend tests use (tests/resultshape.py) finds what it must."""

from __future__ import annotations

import pytest

from tests.resultshape import shape, unexplained_differences

pytestmark = pytest.mark.unit


def _result(phase: dict[str, object]) -> dict[str, object]:
    return {"verdict": "pass", "phases": [phase]}


def test_data_keyed_maps_end_the_path() -> None:
    doc = _result({"dns": {"by_name": {"a.example.": {"lookups": 1}}, "lookups": 1}})
    assert shape(doc) == {
        ".verdict",
        ".phases",
        ".phases[].dns",
        ".phases[].dns.by_name",
        ".phases[].dns.lookups",
    }


def test_a_key_one_backend_lacks_is_a_difference_unless_it_says_why() -> None:
    netns = _result({"kube_proxy": {"sync_count": 3}, "server": {"per_pod": {}}, "unavailable": {}})
    silent = _result({"server": {}, "unavailable": {}})
    said = _result({"server": {}, "unavailable": {"kube_proxy": "x", "server_counters": "y"}})
    assert unexplained_differences(netns, silent) == {
        "only in the first": [
            ".phases[].kube_proxy",
            ".phases[].kube_proxy.sync_count",
            ".phases[].server.per_pod",
        ]
    }
    assert unexplained_differences(netns, said) == {}
    assert unexplained_differences(said, netns) == {}
    # a key only the second has, which the first does not excuse
    extra = _result({"server": {}, "surprise": 1, "unavailable": {"server_counters": "y"}})
    assert unexplained_differences(said, extra) == {"only in the second": [".phases[].surprise"]}
