from __future__ import annotations

import dataclasses
import json
import marshal

import pytest

from cthcommon.errors import BadInput
from loadgen.dns.codec import (
    plan_from_json,
    plan_to_json,
    pod_from_json,
    pod_to_json,
    record_from_json,
    record_from_row,
    record_to_json,
    record_to_row,
)
from loadgen.dns.fake import FakeTransport, Zone, drive
from loadgen.dns.lookup import recorded_lookup
from loadgen.dns.models.glibc import GlibcResolver
from loadgen.dns.pacing import expected_count, start_offsets
from loadgen.dns.types import ClientPod, DNSPlan
from tests.unit.loadgen.dns.support import pod_conf


def plan(**kw: object) -> DNSPlan:
    base: dict[str, object] = {
        "rate": 100.0,
        "duration_s": 2.0,
        "names": ["a"],
        "resolver": "glibc",
    }
    return DNSPlan(**{**base, **kw})  # type: ignore[arg-type]


def test_constant_is_evenly_spaced() -> None:
    offs = list(start_offsets(plan()))
    assert len(offs) == 200
    assert offs[1] - offs[0] == pytest.approx(0.01)
    assert offs[-1] < 2.0


def test_burst_has_idle_gaps() -> None:
    offs = list(
        start_offsets(plan(pattern="burst", duration_s=4.0, burst_on_s=1.0, burst_off_s=1.0))
    )
    assert len(offs) == 200
    assert not [o for o in offs if 1.0 <= o < 2.0 or 3.0 <= o < 4.0]


def test_ramp_rises_linearly() -> None:
    p = plan(pattern="ramp", rate=200.0, duration_s=10.0)
    offs = list(start_offsets(p))
    assert len(offs) == pytest.approx(1000, abs=2)  # area of the ramp: rate * duration / 2
    first_half = sum(1 for o in offs if o < 5.0)
    assert first_half == pytest.approx(250, abs=2)
    assert expected_count(p) == len(offs)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rate", 0),
        ("duration_s", -1),
        ("names", []),
        ("resolver", "bionic"),
        ("pattern", "sine"),
        ("lookups_per_process", 0),
    ],
)
def test_bad_plan_names_the_field(field: str, value: object) -> None:
    with pytest.raises(BadInput, match=field.split("_", maxsplit=1)[0]):
        plan(**{field: value})


def test_json_round_trip() -> None:
    p = plan(pattern="burst", lookups_per_process=3)
    assert plan_from_json(json.loads(json.dumps(plan_to_json(p)))) == p
    pod = ClientPod("cth-x-pod0", "10.0.0.2", pod_conf("single-request-reopen", "timeout:2"))
    assert pod_from_json(json.loads(json.dumps(pod_to_json(pod)))) == pod
    t = FakeTransport(Zone(names={"a.example"}))
    r = drive(recorded_lookup(GlibcResolver(pod_conf()), "a.example.", t, pod="p"))
    assert record_from_json(json.loads(json.dumps(record_to_json(r)))) == r


def test_row_round_trip_through_marshal() -> None:
    """What engine workers send their parent: every field, attempts included, in order."""
    t = FakeTransport(Zone(names={"a.example"}))
    r = drive(recorded_lookup(GlibcResolver(pod_conf()), "a.example", t, pod="p"))
    assert len(r.attempts) >= 2  # through the search list: several attempts to carry
    back = record_from_row(marshal.loads(marshal.dumps([record_to_row(r)]))[0])
    assert back == r
    row = record_to_row(r)
    fields = [f.name for f in dataclasses.fields(r)]
    assert len(row) == len(fields)
    for i, f in enumerate(fields):
        if f != "attempts":
            assert row[i] == getattr(r, f), f
    attempt_fields = [f.name for f in dataclasses.fields(r.attempts[0])]
    assert list(row[fields.index("attempts")][0]) == [
        getattr(r.attempts[0], f) for f in attempt_fields
    ]
