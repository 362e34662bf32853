from __future__ import annotations

import pytest

from harness.results.schema import DNSResult
from loadgen.dns.accounting import percentile, summarize
from loadgen.dns.fake import FakeTransport, Zone, drive, drop_second_of_unanswered_pair
from loadgen.dns.lookup import recorded_lookup
from loadgen.dns.models.glibc import GlibcResolver
from loadgen.dns.types import LookupRecord, Outcome
from tests.unit.loadgen.dns.support import pod_conf


def rec(
    t: float,
    latency: float,
    *,
    waits: int = 0,
    outcome: Outcome = "answer",
    sent: int = 2,
    replies: int = 2,
) -> LookupRecord:
    return LookupRecord(
        t_start=t,
        pod="p",
        name="n",
        outcome=outcome,
        latency_s=latency,
        queries_sent=sent,
        replies_received=replies,
        source_ports=[1],
        retries=0,
        full_timeout_waits=waits,
        resolver="glibc",
    )


def test_percentile_nearest_rank() -> None:
    vals = [float(v) for v in range(1, 101)]
    assert percentile(vals, 50) == 50.0
    assert percentile(vals, 99) == 99.0
    assert percentile(vals, 100) == 100.0
    assert percentile([], 50) == 0.0
    assert percentile([7.0], 1) == 7.0


def test_summary_counts_rates_and_timeline() -> None:
    records = [
        rec(0.1, 0.001),
        rec(0.5, 5.002, waits=1, sent=4, replies=3),
        rec(1.2, 10.0, waits=2, outcome="timeout", sent=4, replies=0),
        rec(2.7, 0.002, outcome="nxdomain"),
    ]
    s = summarize(records, timeout_s=5.0)
    # "unfinished" is optional in result.json (other backends' older workers lack it)
    optional = {"unfinished", "waited", "waited_rate", "by_resolver", "latency_sum_s"}
    assert set(s) == (set(DNSResult.__required_keys__) | optional) - {"timeout_rate_ci"}
    assert s["unfinished"] == 0
    assert s["lookups"] == 4
    assert s["timeouts"] == 2
    assert s["timeout_rate"] == pytest.approx(0.5)
    assert s["failed"] == 1
    assert s["full_timeout_waits"] == 3
    assert s["full_timeout_rate"] == pytest.approx(0.75)
    assert s["queries_sent"] == 12
    assert s["queries_unanswered"] == 5
    assert s["queries_per_lookup"] == pytest.approx(3.0)
    assert s["latency_ms"]["max"] == pytest.approx(10000.0)
    assert s["latency_ms"]["p50"] == pytest.approx(2.0)
    assert s["timeline"] == [[0.0, 2.0, 1.0], [1.0, 1.0, 1.0], [2.0, 1.0, 0.0]]
    assert s["resolver"] == "glibc"


def test_latency_at_timeout_counts_even_without_a_recorded_wait() -> None:
    assert summarize([rec(0, 5.0)], timeout_s=5.0)["timeouts"] == 1
    assert summarize([rec(0, 4.9)], timeout_s=5.0)["timeouts"] == 0


def test_empty() -> None:
    s = summarize([], timeout_s=5.0)
    assert s["lookups"] == 0
    assert s["timeout_rate"] == 0.0
    assert s["timeline"] == []


def test_from_model_records() -> None:
    zone = Zone(names={"my-service.default.svc.cluster.local"})
    t = FakeTransport(zone, drop=drop_second_of_unanswered_pair)
    records = []
    for p in range(2):  # 2 processes x 2 lookups: the first lookup of each process pays
        proc = GlibcResolver(pod_conf())
        for k in range(2):
            records.append(
                drive(
                    recorded_lookup(
                        proc, "my-service.default.svc.cluster.local.", t, t_start=float(2 * p + k)
                    )
                )
            )
    s = summarize(records, timeout_s=5.0)
    assert s["timeouts"] == 2
    assert s["queries_unanswered"] == 2  # the two dropped AAAA
    assert [row[2] for row in s["timeline"]] == [1.0, 0.0, 1.0, 0.0]


def test_unfinished_lookups_are_timeouts_but_not_failures() -> None:
    """Given up at phase end after one full wait: a timeout (it waited one), not a failure
    (its final outcome was not observed), and counted on its own."""
    records = [
        rec(0.1, 0.001),
        rec(0.2, 5.0, waits=1, outcome="unfinished", sent=2, replies=0),
        rec(0.3, 7.5, waits=1, outcome="unfinished", sent=4, replies=1),
        rec(0.4, 10.0, waits=2, outcome="timeout", sent=4, replies=0),
    ]
    s = summarize(records, timeout_s=5.0)
    assert s["unfinished"] == 2
    assert s["timeouts"] == 3
    assert s["failed"] == 1
    assert s["full_timeout_waits"] == 4


# --- musl's short waits: waited, not timed out (issue 13 §2) ---------------------------------
def _musl_and_glibc_records(zone: Zone) -> list[LookupRecord]:
    from loadgen.dns.models import make_resolver

    out = []
    for kind in ("musl", "glibc"):
        t = FakeTransport(zone, drop=drop_second_of_unanswered_pair)
        out.append(drive(recorded_lookup(make_resolver(kind, pod_conf()), FQDN, t)))
    return out


FQDN = "my-service.default.svc.cluster.local."


def test_musl_resend_wait_is_waited_not_a_timeout(zone: Zone) -> None:
    musl, glibc = _musl_and_glibc_records(zone)
    # the same lost AAAA: musl resends after timeout/attempts = 2.5 s, glibc after 5 s
    assert musl.outcome == "answer"
    assert musl.latency_s == pytest.approx(2.501)
    assert musl.full_timeout_waits >= 1
    assert glibc.latency_s >= 5.0
    s = summarize([musl, glibc], timeout_s=5.0)
    assert s["waited"] == 2
    assert s["timeouts"] == 1  # glibc's: it waited the whole timeout
    assert s["by_resolver"] == {
        "glibc": {"lookups": 1, "waited": 1, "timeouts": 1},
        "musl": {"lookups": 1, "waited": 1, "timeouts": 0},
    }
    assert s["waited_rate"] == pytest.approx(1.0)


def test_musl_with_no_reply_is_a_timeout() -> None:
    from loadgen.dns.models import make_resolver

    conf = pod_conf("timeout:4", "attempts:2", nameservers=("10.0.0.1",))
    t = FakeTransport(Zone(), down=frozenset({"10.0.0.1"}))
    r = drive(recorded_lookup(make_resolver("musl", conf), "x.example.", t))
    assert r.outcome == "timeout"
    s = summarize([r], timeout_s=4.0)
    assert s["timeouts"] == 1
    assert s["waited"] == 1


def test_an_unfinished_lookup_is_a_timeout() -> None:
    s = summarize([rec(0.0, 5.0, waits=1, outcome="unfinished", replies=0)], timeout_s=5.0)
    assert s["timeouts"] == 1


def test_latency_sum() -> None:
    s = summarize([rec(0.0, 0.25), rec(0.1, 1.5)], timeout_s=5.0)
    assert s["latency_sum_s"] == pytest.approx(1.75)
