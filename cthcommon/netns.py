"""Network-namespace primitives: enter a namespace for a moment, and make sockets inside one.

``setns(2)`` changes only the calling thread's namespace, and a socket keeps the namespace it
was created in. So one process can hold sockets in many pod namespaces: switch, create, switch
back, with no await in between.

A namespace is named either by its ``ip netns`` name (the netns backend's, under /run/netns)
or by a path to a namespace file, which starts with ``/``: ``/proc/PID/ns/net`` is the
namespace of process PID (a kind node's init, a pod's sandbox). A path of a process's can
outlive the namespace it named (the PID is reused), so whoever keeps one for later keeps the
namespace's inode with it and passes it as ``inode``: entering then refuses a namespace that is
not the same one (:class:`NamespaceGone`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import http.client
import os
import socket
import ssl
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from cthcommon.errors import CommandFailed
from cthcommon.signals import deferred

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = Path("/run/netns")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class NamespaceGone(FileNotFoundError):
    """The namespace a handle named is gone (its path now names another namespace, or none)."""


def is_path(name: str) -> bool:
    """Is this handle a path to a namespace file (``/proc/PID/ns/net``), not an ``ip netns``
    name?"""
    return name.startswith("/")


def of_pid(pid: int) -> str:
    """The handle of process ``pid``'s network namespace, as this host numbers it."""
    return f"/proc/{pid}/ns/net"


def netns_path(name: str) -> str:
    return name if is_path(name) else str(NETNS_RUN_DIR / name)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextmanager
def entered(name: str | None, inode: int | None = None) -> Iterator[None]:
    """Run the body with this thread inside namespace ``name``; always switch back.

    ``None`` means "where this process already is" (e.g. the load worker inside a real pod).
    ``inode``: enter only if the namespace is still that one (else :class:`NamespaceGone`).
    """
    if name is None:
        yield
        return
    # A Ctrl-C (the harness's handler raises) must not land between the two setns calls, or
    # the thread stays in the pod's namespace and the run's cleanup then reads and restores
    # the host's sysctls there: signals are held until the thread is home (the bodies are a
    # socket or an open, microseconds).
    with deferred():
        target = os.open(netns_path(name), os.O_RDONLY)  # a missing namespace raises here...
        try:
            if inode is not None and os.fstat(target).st_ino != inode:
                raise NamespaceGone(f"{name} is no longer namespace {inode}")
            home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)  # ...before this is open
            try:
                _setns(target)
                try:
                    yield
                finally:
                    _setns(home)
            finally:
                os.close(home)
        finally:
            os.close(target)


def socket_in(
    name: str | None, family: int = socket.AF_INET, type_: int = socket.SOCK_DGRAM
) -> socket.socket:
    """A new non-blocking socket that lives in namespace ``name``."""
    with entered(name):
        s = socket.socket(family, type_)
    s.setblocking(False)
    return s


def open_in(name: str, path: str, flags: int = os.O_RDONLY, *, inode: int | None = None) -> int:
    """Open a /proc/sys or /proc/self/net file as seen from namespace ``name``.

    The descriptor keeps pointing at that namespace's value: pread it to sample, pwrite to set.
    """
    with entered(name, inode):
        return os.open(path, flags)


def inode(name: str) -> int:
    """The namespace's inode, as the kernel prints it in 'table full in netns <inode>'."""
    return os.stat(netns_path(name)).st_ino


def local_ipv4(fib_trie: str) -> set[str]:
    """The IPv4 addresses a namespace holds (not loopback's), from its ``/proc/net/fib_trie``:
    each ``/32 host LOCAL`` leaf under the address above it (pure)."""
    out: set[str] = set()
    last = ""
    for line in fib_trie.splitlines():
        word = line.strip()
        if word.startswith("|--"):
            last = word[3:].strip()
        elif word.startswith("/32 host LOCAL") and last and not last.startswith("127."):
            out.add(last)
    return out


def addresses_of(pid: int) -> set[str]:
    """The IPv4 addresses in process ``pid``'s network namespace (empty if it is gone):
    ``/proc/PID/net`` shows that process's namespace, no entering needed."""
    try:
        return local_ipv4(Path(f"/proc/{pid}/net/fib_trie").read_text())
    except OSError:
        return set()


def exec_argv(name: str, argv: Sequence[str]) -> list[str]:
    """``argv`` run in namespace ``name``: ``ip netns exec`` for a name, ``nsenter`` (the
    network namespace only) for a path."""
    if is_path(name):
        return ["nsenter", f"--net={name}", "--", *argv]
    return ["ip", "netns", "exec", name, *argv]


def run(
    argv: Sequence[str],
    *,
    netns: str | None = None,
    input_: str | None = None,
    check: bool = True,
    timeout: float = 30,
) -> subprocess.CompletedProcess[str]:
    """Run a command (in ``netns`` when given); raise :class:`CommandFailed` on error."""
    full = exec_argv(netns, argv) if netns else list(argv)
    try:
        cp = subprocess.run(
            full, input=input_, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as e:
        raise CommandFailed(full, 127, str(e)) from e
    except subprocess.TimeoutExpired as e:
        raise CommandFailed(full, -1, f"timed out after {timeout}s") from e
    if check and cp.returncode != 0:
        raise CommandFailed(full, cp.returncode, cp.stderr)
    return cp


def http_get(
    ns: str,
    host: str,
    port: int,
    path: str,
    timeout: float = 2.0,
    *,
    context: ssl.SSLContext | None = None,
) -> tuple[int, str]:
    """HTTP GET from inside namespace ``ns`` (health and metrics endpoints); over TLS with
    ``context``."""
    sock = socket_in(ns, type_=socket.SOCK_STREAM)
    sock.setblocking(True)
    sock.settimeout(timeout)
    try:
        sock.connect((host, port))
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname=host)
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.sock = sock
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    finally:
        sock.close()
