"""Namespace handles: an ``ip netns`` name or a path (``/proc/PID/ns/net``), no root needed."""

from __future__ import annotations

import os

import pytest

from cthcommon import netns


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


# a pod's /proc/net/fib_trie (kind: eth0 10.244.1.7/24), Main and Local trees
POD_FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 10.244.1.0/24 2 0 2
        +-- 10.244.1.0/29 2 0 2
           |-- 10.244.1.0
              /24 link UNICAST
           |-- 10.244.1.7
              /32 host LOCAL
        |-- 10.244.1.255
           /32 link BROADCAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
     |-- 10.244.1.7
        /32 host LOCAL
"""


def test_a_namespaces_own_addresses_are_read_from_its_fib_trie() -> None:
    assert netns.local_ipv4(POD_FIB_TRIE) == {"10.244.1.7"}  # not the link, broadcast, lo
    assert netns.local_ipv4("") == set()


def test_this_process_namespace_addresses_match_its_fib_trie() -> None:
    """Read through /proc/PID/net: the namespace of that process, no entering."""
    with open("/proc/self/net/fib_trie") as f:
        assert netns.addresses_of(os.getpid()) == netns.local_ipv4(f.read())
    assert netns.addresses_of(0) == set()
