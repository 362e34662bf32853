"""Namespace handles: an ``ip netns`` name or a path (``/proc/PID/ns/net``), no root needed."""

from __future__ import annotations

import os

import pytest

from harness.kernel import netns


def test_a_handle_is_a_name_or_a_path() -> None:
    assert netns.netns_path("cth-a-node-1") == "/run/netns/cth-a-node-1"
    assert netns.netns_path("/proc/42/ns/net") == "/proc/42/ns/net"
    assert netns.of_pid(42) == "/proc/42/ns/net"
    assert netns.is_path(netns.of_pid(42))
    assert not netns.is_path("cth-a-node-1")


def test_commands_run_in_a_named_or_a_path_namespace() -> None:
    assert netns.exec_argv("cth-a-node-1", ["conntrack", "-L"]) == [
        "ip",
        "netns",
        "exec",
        "cth-a-node-1",
        "conntrack",
        "-L",
    ]
    assert netns.exec_argv("/proc/42/ns/net", ["conntrack", "-L"]) == [
        "nsenter",
        "--net=/proc/42/ns/net",
        "--",
        "conntrack",
        "-L",
    ]


def test_a_path_that_names_another_namespace_now_is_not_entered() -> None:
    """The inode is checked on the opened namespace, before setns: another namespace at the
    same path (a reused PID) raises, and this thread stays where it was."""
    mine = netns.of_pid(os.getpid())
    home = os.stat("/proc/thread-self/ns/net").st_ino
    with pytest.raises(netns.NamespaceGone), netns.entered(mine, inode=home + 1):
        pytest.fail("entered a namespace that is not the one asked for")
    assert os.stat("/proc/thread-self/ns/net").st_ino == home
    with pytest.raises(FileNotFoundError), netns.entered("/proc/0/ns/net"):
        pytest.fail("entered a namespace that does not exist")
