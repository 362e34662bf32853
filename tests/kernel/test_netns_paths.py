"""A network namespace named by a path, as kind's nodes and pods are (``/proc/PID/ns/net``
of a process on this host, no ``ip netns`` name): sysctls through the journaled guard,
sockets and commands inside it, and a restore after it is gone."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from cthcommon import netns
from harness import restore
from harness.kernel import sysctl
from harness.kernel.journal import Journal
from harness.kernel.process import descendants, stop_pids

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


POD = "ip addr add {ip}/32 dev lo && ip link set lo up && {{ sleep 120 & }} && exec {pause} 120"


def test_a_container_nodes_pods_are_found_by_their_ip(tmp_path: Path) -> None:
    """kind's node access finds a pod's namespace below its node container's init, by the
    pod's IP: here a "node" process in a namespace of its own, with two "pods" below it,
    each in its own namespace holding its IP, a ``pause`` and a ``sleep`` in it."""
    from harness.backends.kube.nodeaccess import DockerNodeAccess
    from harness.backends.kube.proc import Completed

    pause = tmp_path / "pause"  # a process named pause, as a pod sandbox's is
    shutil.copy(shutil.which("sleep") or "/bin/sleep", pause)
    pods = {"10.250.0.7": "", "10.250.0.8": ""}
    script = " & ".join(f"unshare --net -- sh -c '{POD.format(ip=ip, pause=pause)}'" for ip in pods)
    node = subprocess.Popen(["unshare", "--net", "--", "sh", "-c", f"{script} & wait"])

    def docker(argv: Sequence[str], **_kw: object) -> Completed:
        assert argv[:2] == ["docker", "inspect"]
        return Completed(list(argv), 0, f"{node.pid}\n", "")

    access = DockerNodeAccess(docker)
    try:
        found: dict[str, str] = {}
        deadline = time.monotonic() + 10
        while len(found) < 2 and time.monotonic() < deadline:
            found = access.pod_netns("node", [*pods, "10.250.0.9"])
            time.sleep(0.05)
        assert sorted(found) == sorted(pods)  # and nothing for an IP no pod holds
        assert access.netns("node") == netns.of_pid(node.pid)
        for ip, handle in found.items():
            pid = int(handle.split("/")[2])
            assert Path(f"/proc/{pid}/comm").read_text().strip() == "pause"  # preferred
            assert netns.addresses_of(pid) == {ip}
            assert netns.inode(handle) != netns.inode(netns.of_pid(node.pid))
    finally:
        kids = descendants(node.pid)
        node.kill()
        stop_pids([(pid, None) for pid in kids])
        node.wait()
