"""Locust users and the raw client against nginx in real pod namespaces (needs root).

The harness's own topology, built and torn down per test: client pods on node-1, whose
kube-proxy rules DNAT the http-server ClusterIP to the nginx pod on node-2.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO

import pytest

from cthcommon.netns import exec_argv, run, socket_in
from harness.backends.netns import topologyplan as P
from harness.backends.netns.topology import Topology
from harness.backends.netns.topologyplan import plan_topology
from harness.kernel.journal import Journal
from harness.plan.phase import plan_cluster
from harness.scenario.model import ClusterSpec, CoreDNSSpec
from loadgen.http.plan import HTTPPlan, HTTPTarget
from loadgen.http.rawclient import run_http_load_sync
from loadgen.locust.launch import run_locust
from loadgen.locust.plan import LocustPlan

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="builds network namespaces: needs root"),
]


MARKER_PORT = 9  # discard: closed in a node's namespace, so a connect is refused at once


def _pod_flow(line: str) -> bool:
    """A conntrack line (listing or event) of a flow a pod started: its original source,
    the first ``src=``, is in the pod CIDR."""
    return " src=10.244." in f" {line.split('dst=', maxsplit=1)[0]}"


@dataclass
class FlowEvents:
    """Counted by :meth:`Testbed.flow_events`. A client that holds no TIME_WAIT may pick a
    source port again within seconds; its SYN then finds that tuple's entry in TIME_WAIT, and
    conntrack destroys it and tracks the new connection instead (``destroyed_time_wait``), so
    the table grows by ``new - destroyed_time_wait``."""

    new: int = 0
    destroyed_time_wait: int = 0


@dataclass(frozen=True)
class Testbed:
    """The names these tests use, over a harness :class:`Topology`."""

    __test__ = False  # not a pytest test class, despite the name
    topo: Topology

    @property
    def clients(self) -> list[str]:
        return [p.ns for p in self.topo.plan.role("client")]

    @property
    def client_ips(self) -> list[str]:
        return [p.ip for p in self.topo.plan.role("client")]

    @property
    def node(self) -> str:
        """The clients' node: where their connections are DNATed and tracked."""
        return self.topo.client_nodes()[0]

    @property
    def server(self) -> str:
        return self.topo.plan.role("http")[0].ns

    cluster_ip = P.HTTP_SERVICE_IP

    def conntrack_count(self) -> int:
        """Entries of flows the pods started (original source in the pod CIDR): the node's
        own kube-proxy -> kube-apiserver watch is tracked there too, and a flush makes its
        next packet a new entry, so the whole table is not the pods' count."""
        return sum(self.pod_flow_states().values())

    @contextmanager
    def flow_events(self) -> Iterator[FlowEvents]:
        """The kernel's NEW and DESTROY events for the pods' TCP flows in the node while the
        block runs (``conntrack -E``, started and stopped by its PID)."""
        # to a file, not a pipe: a pipe nobody reads while the load runs fills at 64 KiB
        # (about 430 events) and stalls conntrack
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            proc = subprocess.Popen(
                exec_argv(self.node, ["conntrack", "-E", "-p", "tcp", "-e", "NEW,DESTROY",
                                      "--buffer-size", str(8 << 20)]),
                stdout=out, stderr=err, text=True,
            )  # fmt: skip
            events = FlowEvents()
            try:
                # subscribed before the load's first connection, and every event of the load
                # written before it stops: a marker flow of the node's own seen both times
                self._await_marker(proc, out)
                yield events
                self._await_marker(proc, out)
            finally:
                proc.terminate()
                proc.wait(timeout=10)
            out.seek(0)
            err.seek(0)
            listing, errors = out.read(), err.read()
        assert "ENOBUFS" not in errors, errors  # no event was lost
        for line in filter(_pod_flow, listing.splitlines()):
            kind, *fields = line.split()
            events.new += kind == "[NEW]"
            events.destroyed_time_wait += kind == "[DESTROY]" and "TIME_WAIT" in fields

    def _await_marker(self, proc: subprocess.Popen[str], out: IO[str]) -> None:
        """Open a marker flow in the node (a connect to a closed port on its loopback:
        SYN, RST) until ``conntrack -E`` has written its NEW event to ``out``."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"conntrack -E exited {proc.returncode}"
            s = socket_in(self.node, socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind(("127.0.0.1", 0))
                sport = s.getsockname()[1]
                with contextlib.suppress(OSError):
                    s.connect(("127.0.0.1", MARKER_PORT))
            finally:
                s.close()
            mark = f"sport={sport} dport={MARKER_PORT} "
            for _ in range(20):
                if mark in os.pread(out.fileno(), 1 << 30, 0).decode(errors="replace"):
                    return
                time.sleep(0.01)
        raise AssertionError("conntrack -E wrote no event for the marker flow within 10 s")

    def pod_flow_states(self) -> Counter[str]:
        """The pods' tracked flows by state (TCP's state; "udp" for UDP), for the messages."""
        listing = run(["conntrack", "-L"], netns=self.node).stdout
        return Counter(
            f[3] if f[0] == "tcp" else f[0]
            for f in (ln.split() for ln in filter(_pod_flow, listing.splitlines()))
        )


@pytest.fixture
def bed(journal: Journal) -> Iterator[Testbed]:
    spec = ClusterSpec(nodes=2, client_pods=2, coredns=CoreDNSSpec(replicas=1))
    with Topology(plan_topology(plan_cluster(spec), journal.run_id), journal) as topo:
        topo.flush_conntrack()  # start from an empty table: no readiness probes counted
        yield Testbed(topo)


def _time_wait(ns: str, side: str) -> int:
    """TIME_WAIT sockets of HTTP connections: ``side`` is "client" (dport 80) or "server"."""
    port_filter = "dport = :80" if side == "client" else "sport = :80"
    out = run(["ss", "-Htan", "state", "time-wait", port_filter], netns=ns).stdout
    return sum(1 for line in out.splitlines() if line.strip())


def test_short_lived_user_opens_one_connection_per_request_and_leaves_time_wait(
    bed: Testbed,
) -> None:
    before = bed.conntrack_count()
    stats = run_locust(
        LocustPlan(host=bed.cluster_ip, user="short-lived", users=4, rate=150, duration_s=3),
        netns=bed.clients[0],
    )
    assert stats["failures"] == 0
    assert stats["requests"] >= 300
    assert stats["new_connections"] == stats["requests"]
    # The kernel agrees: one tracked flow per connection in the node, and the client,
    # which closed first, holds one TIME_WAIT socket per connection.
    assert bed.conntrack_count() - before == stats["new_connections"]
    # one TIME_WAIT per connection; the last may still be closing when `ss` reads the table
    assert 0 <= stats["new_connections"] - _time_wait(bed.clients[0], "client") <= 1
    assert _time_wait(bed.server, "server") == 0
    states = run(["conntrack", "-L", "-p", "tcp"], netns=bed.node).stdout
    assert states.count("TIME_WAIT") == stats["new_connections"]


def test_server_closes_user_puts_time_wait_on_the_server(bed: Testbed) -> None:
    stats = run_locust(
        LocustPlan(host=bed.cluster_ip, user="server-close", path="/close", users=2, rate=100,
                   duration_s=2),
        netns=bed.clients[0],
    )  # fmt: skip
    assert stats["failures"] == 0
    assert stats["new_connections"] == stats["requests"] > 0
    # At most the request each user had in flight when the run stopped (2 users) ends
    # client-first; every other connection was closed by the server.
    assert _time_wait(bed.clients[0], "client") <= 2
    # The server closed first, so it holds the TIME_WAIT. The client holds none, so it may
    # reuse a source port whose server-side TIME_WAIT the new SYN then takes over: allow
    # those few (about n^2 / (2 * 28232) expected).
    server_tw = _time_wait(bed.server, "server")
    assert 0.97 * stats["new_connections"] <= server_tw <= stats["new_connections"]


def test_pooled_user_opens_at_most_pool_size_connections(bed: Testbed) -> None:
    before = bed.conntrack_count()
    stats = run_locust(
        LocustPlan(host=bed.cluster_ip, user="pooled", pool_size=3, rate=300, duration_s=3),
        netns=bed.clients[0],
    )
    assert stats["failures"] == 0
    assert stats["requests"] >= 600
    assert 1 <= stats["new_connections"] <= 3
    assert bed.conntrack_count() - before == stats["new_connections"]


def test_distributed_two_workers_in_two_pods_merge_stats(bed: Testbed) -> None:
    before = bed.conntrack_count()
    stats = run_locust(
        LocustPlan(
            host=bed.cluster_ip, user="short-lived", users=4, rate=200, duration_s=4,
            workers=2, worker_netns=bed.clients, master_host=bed.client_ips[0],
        ),
        netns=bed.clients[0],
    )  # fmt: skip
    workers = stats["per_worker"]
    assert stats["workers"] == 2
    assert [w["worker"] for w in workers] == ["worker-0", "worker-1"]
    assert all(w["requests"] > 0 for w in workers)
    assert stats["requests"] == sum(w["requests"] for w in workers)
    assert stats["new_connections"] == sum(w["new_connections"] for w in workers)
    assert stats["new_connections"] == stats["requests"]
    assert stats["failures"] == 0
    # Each worker's pod holds the TIME_WAIT of its own connections.
    for ns, w in zip(bed.clients, workers, strict=True):
        assert 0 <= w["new_connections"] - _time_wait(ns, "client") <= 1
    # Node: one entry per HTTP connection, plus the worker-1 -> master control connection.
    assert bed.conntrack_count() - before == stats["new_connections"] + 1


@pytest.mark.parametrize(("mode", "client_tw"), [("short-lived", True), ("server-close", False)])
def test_raw_client_counts_match_the_kernel(bed: Testbed, mode: str, client_tw: bool) -> None:
    before = bed.conntrack_count()
    with bed.flow_events() as ev:
        res = run_http_load_sync(
            [HTTPTarget(bed.cluster_ip, netns=ns) for ns in bed.clients],
            HTTPPlan(mode=mode, rate=500, duration_s=2),  # type: ignore[arg-type]
        )
    assert res.failures == 0
    assert res.requests == res.new_connections >= 900
    # the kernel tracked one new flow per connection
    assert ev.new == res.new_connections
    grown = bed.conntrack_count() - before
    if client_tw:  # the client's TIME_WAIT holds every port: one more entry per connection
        assert ev.destroyed_time_wait == 0
        assert grown == res.new_connections
    else:
        # nothing holds the client's port, so the kernel may pick one again; conntrack then
        # replaces that tuple's TIME_WAIT entry instead of adding one (seen in CI: 981
        # entries for 999 connections)
        assert grown == res.new_connections - ev.destroyed_time_wait
    tw = _time_wait(bed.clients[0], "client") + _time_wait(bed.clients[1], "client")
    assert tw == (res.new_connections if client_tw else 0)
    assert sum(r["requests"] for r in res.timeline) == res.requests


def test_raw_client_pooled_reuses_connections(bed: Testbed) -> None:
    res = run_http_load_sync(
        [HTTPTarget(bed.cluster_ip, netns=bed.clients[0])],
        HTTPPlan(mode="pooled", rate=500, duration_s=2, pool_size=4),
    )
    assert res.failures == 0
    assert res.requests >= 900
    assert res.new_connections == 4
