"""The statsd-like sender: its tally (pure), and one real run against a loopback receiver in
this process's own namespace (no root): one socket and one source port per pod all phase,
fire and forget, every datagram shorter than a DNS header."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from loadgen.udp.sameport import SamePortPod
from loadgen.udp.statsd import MAX_UDP_LENGTH, PAYLOAD, SendTally, StatsdPlan, run_statsd
from loadgen.worker import StatsdWork, WorkerPlan

pytestmark = pytest.mark.unit


def test_tally_counts_by_send_second_and_adds_up() -> None:
    a, b = SendTally(), SendTally()
    for at in (0.1, 0.9, 2.5):
        a.sent(at)
    b.sent(0.2)
    b.errors = 1
    a.add(b)
    assert a.timeline() == [[0, 3], [2, 1]]
    assert a.total() == 4
    assert a.errors == 1


def test_the_payload_is_a_statsd_line_shorter_than_a_dns_header() -> None:
    name, rest = PAYLOAD.decode().split(":")
    value, kind = rest.split("|")
    assert name
    assert int(value) == 1
    assert kind == "c"
    assert len(PAYLOAD) < 12
    assert 8 + len(PAYLOAD) <= MAX_UDP_LENGTH < 8 + 12


def test_one_port_per_pod_and_every_datagram_arrives_on_loopback() -> None:
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(0.2)
    seen: list[tuple[bytes, int]] = []
    stop = threading.Event()

    def receive() -> None:
        while not stop.is_set():
            try:
                data, (_, port) = rx.recvfrom(64)
            except TimeoutError:
                continue
            seen.append((data, port))

    t = threading.Thread(target=receive)
    t.start()
    pods = [SamePortPod(None, "127.0.0.1"), SamePortPod(None, "127.0.0.2")]
    plan = StatsdPlan(target="127.0.0.1", rate=50, duration_s=0.5, port=rx.getsockname()[1])
    try:
        res = asyncio.run(run_statsd(pods, plan))
        deadline = 50
        while len(seen) < res["sent"] and deadline:
            stop.wait(0.02)
            deadline -= 1
    finally:
        stop.set()
        t.join()
        rx.close()
    assert res["pods"] == 2
    assert res["sent"] == sum(n for _, n in res["timeline"]) > 0
    assert res["send_errors"] == 0
    assert len(seen) == res["sent"]
    assert {d for d, _ in seen} == {PAYLOAD}
    # each pod kept the one source port it reported, for every datagram
    assert {p for _, p in seen} == set(res["source_ports"].values())
    assert len(set(res["source_ports"].values())) == 2
    assert sum(n for rows in res["by_pod"].values() for _, n in rows) == res["sent"]


def test_the_worker_plan_round_trips_the_sender() -> None:
    work = StatsdWork(
        pods=(SamePortPod("ns-a", "10.244.1.2"),),
        plan=StatsdPlan(target="10.96.0.10", rate=20, duration_s=28),
    )
    wp = WorkerPlan(duration_s=28, statsd=work)
    assert WorkerPlan.from_json(wp.to_json()) == wp
