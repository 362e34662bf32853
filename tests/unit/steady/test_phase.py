"""The steady-state glue every backend shares (harness.steady.phase): pure parts."""

from __future__ import annotations

import pytest

from cthcommon.resolvconf import ResolvConf
from harness.plan.phase import plan_phase
from harness.scenario.loader import parse_scenario
from harness.steady import phase as steady
from harness.steady.model import Timeouts

pytestmark = pytest.mark.unit

TIMEOUTS = Timeouts(tcp_time_wait=120, tcp_close=10, udp=30, udp_stream=120)


def test_known_names_are_the_services_and_the_external_names() -> None:
    got = steady.known_names("cluster.local", "cth-ab12", ["API.example.com."])
    assert got == {
        "kube-dns.kube-system.svc.cluster.local",
        "http-server.cth-ab12.svc.cluster.local",
        "api.example.com",
    }


@pytest.mark.parametrize(
    ("gap", "previous", "want"),
    [(1.7, 0.8, 1.7), (12.0, 0.8, 0.8), (0.0, 0.8, 0.8), (None, 0.5, 0.5)],
)
def test_the_next_phase_plans_with_a_usual_gap_only(
    gap: float | None, previous: float, want: float
) -> None:
    result = {"warmup": {"gap_to_load_s": gap}} if gap is not None else {}
    assert steady.next_startup_s(result, previous) == want  # type: ignore[arg-type]


def _load(warmup: str | None, http_rate: int) -> object:
    load: dict[str, object] = {
        "duration_s": 20,
        "dns": {"rate": 50},
        "http": {"rate": http_rate, "mode": "short-lived"},
    }
    if warmup:
        load["warmup"] = warmup
    sc = parse_scenario(
        {"name": "s", "cluster": {"nodes": 2}, "load": load, "phases": [{"name": "p"}]}
    )
    return plan_phase(sc, sc.phases[0]).load


@pytest.mark.parametrize(("warmup", "wanted"), [(None, True), ("none", False)])
def test_a_load_near_the_limit_gets_the_aged_warm_up_unless_it_says_none(
    warmup: str | None, wanted: bool
) -> None:
    aged = steady.phase_steady(
        _load(warmup, http_rate=400),  # type: ignore[arg-type]
        names=["http-server.default.svc.cluster.local."],
        resolv=ResolvConf.parse("nameserver 10.96.0.10\noptions ndots:5\n"),
        table_max=16384,  # 400 conn/s x 120 s TIME_WAIT = 48k entries: over the table
        timeouts=TIMEOUTS,
        known={"http-server.default.svc.cluster.local"},
        nodelocal=False,
    )
    assert aged.model.saturated  # 400 conn/s x 120 s TIME_WAIT: 48k entries for 16k slots
    assert aged.wanted is wanted


def test_a_load_far_below_the_limit_starts_naturally() -> None:
    aged = steady.phase_steady(
        _load(None, http_rate=1),  # type: ignore[arg-type]
        names=[],
        resolv=ResolvConf.parse("nameserver 10.96.0.10\n"),
        table_max=262144,
        timeouts=TIMEOUTS,
        known=set(),
        nodelocal=False,
    )
    assert aged.model.far_below_limit
    assert not aged.wanted
    assert steady.no_warmup_on("kubeconfig").startswith("natural: no warm-up (the kubeconfig")


def test_load_start_is_the_first_pods_on_the_samplers_clock() -> None:
    assert steady.load_start([105.25, 104.5], 100.0) == 4.5
    assert steady.load_start([], 100.0) is None
