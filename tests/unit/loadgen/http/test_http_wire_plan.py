"""The wire format, plan validation, pacing and accounting of the HTTP load generators."""

from __future__ import annotations

import pytest

from cthcommon.errors import BadInput
from harness.scenario.model import HTTPLoad
from loadgen.http.plan import Accounting, HTTPLoadResult, HTTPPlan, HTTPTarget, due, percentile
from loadgen.http.wire import ProtocolError, ResponseReader, build_request


def test_request_close_header_only_when_asked() -> None:
    assert b"Connection: close" in build_request("h", "/x", close=True)
    keep = build_request("h", "/x", close=False)
    assert b"Connection" not in keep
    assert keep.startswith(b"GET /x HTTP/1.1\r\nHost: h\r\n")
    assert keep.endswith(b"\r\n\r\n")


@pytest.mark.parametrize("split", [1, 5, 17, 1000])
def test_reader_completes_on_content_length_in_any_split(split: int) -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nServer: x\r\n\r\nok\n"
    r = ResponseReader()
    done = [r.feed(raw[i : i + split]) for i in range(0, len(raw), split)]
    assert done[-1]
    assert not any(done[:-1])
    assert (r.status, r.keep_alive, r.received) == (200, True, len(raw))


def test_reader_without_length_needs_eof_and_is_not_keepalive() -> None:
    r = ResponseReader()
    assert not r.feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody")
    assert not r.keep_alive
    assert r.eof()


def test_reader_eof_before_headers_is_incomplete() -> None:
    r = ResponseReader()
    r.feed(b"HTTP/1.1 200 O")
    assert not r.eof()


@pytest.mark.parametrize(
    "raw", [b"SSH-2.0-x\r\n\r\n", b"HTTP/1.1 abc\r\n\r\n", b"HTTP/1.1 200 OK\r\nbad\r\n\r\n"]
)
def test_reader_rejects_garbage(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        ResponseReader().feed(raw)


def test_plan_from_scenario_load_keeps_field_names() -> None:
    load = HTTPLoad(mode="pooled", rate=123, pool_size=3, connect_timeout_s=1.5, max_in_flight=9)
    plan = HTTPPlan.from_load(load, duration_s=7)
    assert (plan.mode, plan.rate, plan.pool_size, plan.connect_timeout_s, plan.max_in_flight) == (
        load.mode, load.rate, load.pool_size, load.connect_timeout_s, load.max_in_flight,
    )  # fmt: skip
    assert plan.duration_s == 7


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"mode": "udp"}, "plan.mode"),
        ({"rate": 0}, "plan.rate"),
        ({"duration_s": float("nan")}, "plan.duration_s"),
        ({"pool_size": 0}, "plan.pool_size"),
    ],
)
def test_plan_rejects_bad_values_naming_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(BadInput) as e:
        HTTPPlan(**kwargs)  # type: ignore[arg-type]
    assert e.value.field == field


def test_target_validation_and_host_header() -> None:
    assert HTTPTarget("10.0.0.1", port=8080).host_header == "10.0.0.1:8080"
    assert HTTPTarget("10.0.0.1", host="svc").host_header == "svc"
    with pytest.raises(BadInput):
        HTTPTarget("svc.cluster.local")
    with pytest.raises(BadInput):
        HTTPTarget("10.0.0.1", path="x")


def test_due_is_open_loop_and_capped_at_duration() -> None:
    counts = [due(t / 10, rate=25, duration_s=2) for t in range(0, 31)]
    assert counts[0] == 0
    assert counts[10] == 25
    assert counts == sorted(counts)
    assert max(counts) == 50


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, q) for q in (50, 90, 99, 100)] == [50.0, 90.0, 99.0, 100.0]
    assert percentile([], 50) == 0.0


def test_accounting_timeline_and_result() -> None:
    acc = Accounting()
    for t in (0.1, 0.2, 2.5):
        acc.connection_opened(t)
        acc.request_done(t + 0.01, 4.0, None)
    acc.connection_opened(2.6)
    acc.request_done(2.7, 2000.0, "connect-timeout")
    res = HTTPLoadResult.from_accounting("short-lived", acc, elapsed_s=3.0)
    rows = [(r["t_s"], r["requests"], r["failures"], r["new_connections"]) for r in res.timeline]
    assert rows == [(0, 2, 0, 2), (1, 0, 0, 0), (2, 2, 1, 2)]
    assert (res.requests, res.failures, res.new_connections, res.connect_failures) == (4, 1, 4, 1)
    assert res.errors == {"connect-timeout": 1}
    assert res.latency_ms["max"] == 4.0  # failed requests carry no latency
    http = res.to_http_result()
    assert http["failure_rate"] == pytest.approx(0.25)
    assert http["new_connections"] == 4
