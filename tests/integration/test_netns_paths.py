"""A network namespace named by a path, as kind's nodes and pods are (``/proc/PID/ns/net``
of a process on this host, no ``ip netns`` name): sysctls through the journaled guard,
sockets and commands inside it, and a restore after it is gone."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

from harness import restore
from harness.kernel import netns, sysctl
from harness.kernel.journal import Journal

pytestmark = pytest.mark.kernel

TW = "net.netfilter.nf_conntrack_tcp_timeout_time_wait"


@pytest.fixture
def container() -> Iterator[subprocess.Popen[bytes]]:
    """A process in a network namespace of its own, as a node container's init is."""
    p = subprocess.Popen(["unshare", "--net", "--", "sleep", "120"])
    try:
        deadline = time.monotonic() + 5
        host = netns.inode("/proc/self/ns/net")
        while netns.inode(netns.of_pid(p.pid)) == host:  # until unshare exec'd sleep
            assert time.monotonic() < deadline
            time.sleep(0.01)
        yield p
    finally:
        p.kill()
        p.wait()


def test_a_path_namespace_is_entered_changed_and_restored(
    journal: Journal, container: subprocess.Popen[bytes], host_unchanged: object
) -> None:
    ns = netns.of_pid(container.pid)
    ino = netns.inode(ns)
    host_tw = sysctl.read(TW)
    # commands (nsenter) and sockets run inside it, not on the host
    seen = netns.run(["readlink", "/proc/self/ns/net"], netns=ns).stdout.strip()
    assert seen == f"net:[{ino}]"
    inside = netns.socket_in(ns, socket.AF_INET, socket.SOCK_DGRAM)
    here = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:  # one port, bound twice: only in two namespaces
        here.bind(("127.0.0.1", 0))
        inside.bind(here.getsockname())
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again,
            pytest.raises(OSError, match="in use"),
        ):
            again.bind(here.getsockname())
    finally:
        inside.close()
        here.close()
    # per-namespace sysctls, journaled with the namespace's inode, restored in it only
    guard = sysctl.SysctlGuard(journal)
    original = sysctl.read(TW, ns)
    with guard.scope():
        guard.set(TW, 7, ns)
        assert sysctl.read(TW, ns) == "7"
        assert sysctl.read(TW) == host_tw
    assert sysctl.read(TW, ns) == original
    entry = next(e for e in journal.entries if e["op"] == "sysctl")
    assert (entry["netns"], entry["ino"], entry["original"]) == (ns, ino, original)
    # a killed run's restore puts it back while the namespace is the same one
    guard.set(TW, 9, ns)
    report = restore.RestoreReport()
    restore.undo_journal(Journal.load(journal.path), report)
    assert report.errors == []
    assert sysctl.read(TW, ns) == original
    assert sysctl.read(TW) == host_tw


def test_a_path_namespace_that_is_gone_is_skipped_quietly(
    journal: Journal, container: subprocess.Popen[bytes], host_unchanged: object
) -> None:
    ns = netns.of_pid(container.pid)
    guard = sysctl.SysctlGuard(journal)
    guard.set(TW, 7, ns)
    container.kill()
    container.wait()
    guard.restore_all()  # the container took its sysctls with it: no RestoreFailed
    report = restore.RestoreReport()
    restore.undo_journal(Journal.load(journal.path), report)
    assert report.errors == []
    assert not any(ns in a for a in report.actions)
