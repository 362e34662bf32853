"""The same-port client: its accounting (pure), and one real run against loopback servers in
this process's own namespace (no root): one socket per pod all phase, answers counted,
ECONNREFUSED counted as refused, silence counted after the timeout."""

from __future__ import annotations

import asyncio
import socket
import threading

import dns.message
import pytest

from loadgen.udp.sameport import (
    SamePortPlan,
    SamePortPod,
    Tally,
    Waiting,
    query_wire,
    reply_id,
    run_same_port,
)

pytestmark = pytest.mark.unit


def test_tally_counts_by_send_second() -> None:
    t = Tally()
    for at in (0.1, 0.6, 1.2):
        t.sent(at)
    t.ended(0.1, "answered")
    t.ended(0.6, "refused")
    t.ended(1.2, "silent")
    assert t.timeline() == [[0, 2, 1, 1, 0], [1, 1, 0, 0, 1]]
    assert t.totals() == {"sent": 3, "answered": 1, "refused": 1, "silent": 1}
    assert Tally().totals() == {"sent": 0, "answered": 0, "refused": 0, "silent": 0}


def test_waiting_answers_by_id_refuses_the_oldest_and_expires_after_the_timeout() -> None:
    w = Waiting()
    w.add(1, 0.0)
    w.add(2, 0.05)
    w.add(3, 0.1)
    assert w.answer(2) == 0.05
    assert w.answer(2) is None  # a duplicate reply is not a second answer
    assert w.refuse_oldest() == 0.0
    assert w.expire(1.05, 1.0) == []
    assert w.expire(1.1, 1.0) == [0.1]
    assert w.refuse_oldest() is None


def test_reply_id_reads_only_replies() -> None:
    q = query_wire("kube-dns.kube-system.svc.cluster.local", 4242)
    assert reply_id(q) is None  # QR clear: a query
    r = dns.message.make_response(dns.message.from_wire(q)).to_wire()
    assert reply_id(r) == 4242
    assert reply_id(b"\x00") is None


def _server(sock: socket.socket, stop: threading.Event, seen: list[int]) -> None:
    sock.settimeout(0.05)
    while not stop.is_set():
        try:
            data, peer = sock.recvfrom(4096)
        except TimeoutError:
            continue
        seen.append(peer[1])
        sock.sendto(dns.message.make_response(dns.message.from_wire(data)).to_wire(), peer)


def _run(target: str, port: int, pods: int = 2) -> dict[str, object]:
    plan = SamePortPlan(
        target=target, rate=20, name="a.example", timeout_s=0.3, duration_s=1.0, port=port
    )
    return dict(
        asyncio.run(run_same_port([SamePortPod(None, f"pod-{i}") for i in range(pods)], plan))
    )


def test_one_socket_per_pod_answered_all_phase() -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    srv.bind(("127.0.0.1", 0))
    stop, seen = threading.Event(), []  # type: ignore[var-annotated]
    th = threading.Thread(target=_server, args=(srv, stop, seen), daemon=True)
    th.start()
    try:
        r = _run("127.0.0.1", srv.getsockname()[1])
    finally:
        stop.set()
        th.join()
        srv.close()
    assert r["sent"] == 40 == r["answered"]
    assert (r["refused"], r["silent"]) == (0, 0)
    ports = r["source_ports"]
    assert isinstance(ports, dict)
    assert set(seen) == set(ports.values())  # every query from its pod's one port
    assert len(set(seen)) == 2
    by_pod = r["by_pod"]
    assert isinstance(by_pod, dict)
    assert sorted(by_pod) == ["pod-0", "pod-1"]
    assert all(sum(row[1] for row in rows) == 20 for rows in by_pod.values())


def test_a_closed_port_is_refused_and_a_silent_one_is_silent() -> None:
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens: the kernel answers ICMP port unreachable
    r = _run("127.0.0.1", port, pods=1)
    assert r["sent"] == 20
    assert r["refused"] == 20
    assert r["answered"] == 0
    mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mute.bind(("127.0.0.1", 0))  # listens, never answers
    try:
        r = _run("127.0.0.1", mute.getsockname()[1], pods=1)
    finally:
        mute.close()
    assert (r["sent"], r["silent"], r["refused"], r["answered"]) == (20, 20, 0, 0)
