"""A minimal routed-veth testbed for the HTTP load generators' own tests and benches.

One node namespace, one nginx server pod and N client pods, each pod on a routed veth
(the Calico / AWS VPC CNI layout) with a kube-proxy-style DNAT "ClusterIP" in the node.
Every namespace is named ``cth-<tag>-<random>-...`` and deleted on exit, on every path.
The full cluster (kube-proxy chains, CoreDNS, several nodes) is the netns backend's job;
this exists so the load generators can be measured on their own.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import BackendError, BadInput
from harness.kernel.netns import exec_argv, open_in, run, socket_in

CLUSTER_IP = "10.96.0.20"
SERVER_IP = "10.244.1.10"
NODE_LINK_IP = "169.254.1.1"

NGINX_CONF = """\
worker_processes {workers};
worker_rlimit_nofile 65536;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 16384; }}
http {{
  access_log off;
  default_type text/plain;
  client_body_temp_path {tmp}/body;
  proxy_temp_path {tmp}/proxy;
  fastcgi_temp_path {tmp}/fastcgi;
  uwsgi_temp_path {tmp}/uwsgi;
  scgi_temp_path {tmp}/scgi;
  keepalive_requests 1000000;
  server {{
    listen 80 backlog=8192;
    location / {{ return 200 "ok\\n"; }}
    location /close {{ keepalive_timeout 0; return 200 "ok\\n"; }}
  }}
}}
"""


@dataclass
class Testbed:
    __test__ = False  # not a pytest test class, despite the name
    prefix: str
    node: str
    server: str
    clients: list[str]
    client_ips: list[str]
    server_ip: str = SERVER_IP
    cluster_ip: str = CLUSTER_IP
    nginx_pid: int = 0
    _all: list[str] = field(default_factory=list)

    def conntrack_count(self) -> int:
        """Entries in the node's conntrack table right now."""
        fd = open_in(self.node, "/proc/sys/net/netfilter/nf_conntrack_count")
        try:
            return int(os.pread(fd, 64, 0))
        finally:
            os.close(fd)


def _sysctl(ns: str, *pairs: str) -> None:
    run(["sysctl", "-qw", *pairs], netns=ns)


def _wait_listening(
    ns: str, ip: str, port: int, timeout_s: float, proc: subprocess.Popen[bytes]
) -> None:
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BackendError(f"nginx exited early with code {proc.returncode}")
        s = socket_in(ns, socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(True)
        s.settimeout(0.5)
        try:
            s.connect((ip, port))
            return
        except OSError as e:
            last = e
            time.sleep(0.05)
        finally:
            s.close()
    raise BackendError(f"nginx did not listen on {ip}:{port} within {timeout_s}s: {last}")


def _add_pod(node: str, pod: str, node_if: str, ip: str) -> None:
    run(
        [
            "ip",
            "-n",
            node,
            "link",
            "add",
            node_if,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            pod,
        ]
    )
    run(["ip", "-n", node, "addr", "add", f"{NODE_LINK_IP}/32", "dev", node_if])
    run(["ip", "-n", node, "link", "set", node_if, "up"])
    run(["ip", "-n", node, "route", "add", f"{ip}/32", "dev", node_if])
    _sysctl(node, f"net.ipv4.conf.{node_if}.proxy_arp=1", f"net.ipv4.neigh.{node_if}.proxy_delay=0")
    run(["ip", "-n", pod, "link", "set", "lo", "up"])
    run(["ip", "-n", pod, "addr", "add", f"{ip}/32", "dev", "eth0"])
    run(["ip", "-n", pod, "link", "set", "eth0", "up"])
    run(["ip", "-n", pod, "route", "add", NODE_LINK_IP, "dev", "eth0"])
    run(["ip", "-n", pod, "route", "add", "default", "via", NODE_LINK_IP, "dev", "eth0"])


@contextmanager
def build_testbed(
    tag: str = "lc",
    clients: int = 1,
    *,
    nginx_workers: int = 1,
    wide_port_range: bool = False,
) -> Iterator[Testbed]:
    """Build the testbed; tear everything down when the block exits, however it exits."""
    if not tag.isalnum() or len(tag) > 6:
        raise BadInput("1-6 letters or digits", field="tag", value=tag)
    if not 1 <= clients <= 16:
        raise BadInput(field="clients", value=clients, allowed="1..16")
    prefix = f"cth-{tag}-{secrets.token_hex(3)}"
    node, server = f"{prefix}-node", f"{prefix}-srv"
    client_ns = [f"{prefix}-c{i + 1}" for i in range(clients)]
    client_ips = [f"10.244.1.{21 + i}" for i in range(clients)]
    with ExitStack() as stack:
        for ns in (node, server, *client_ns):
            stack.callback(run, ["ip", "netns", "del", ns], check=False)
            run(["ip", "netns", "add", ns])
        run(["ip", "-n", node, "link", "set", "lo", "up"])
        _sysctl(node, "net.ipv4.ip_forward=1")
        _add_pod(node, server, "vsrv", SERVER_IP)
        for i, (ns, ip) in enumerate(zip(client_ns, client_ips, strict=True)):
            _add_pod(node, ns, f"vc{i + 1}", ip)
            if wide_port_range:
                _sysctl(ns, "net.ipv4.ip_local_port_range=1024 65535")
        run(
            ["iptables", "-w", "-t", "nat", "-A", "PREROUTING", "-d", f"{CLUSTER_IP}/32",
             "-p", "tcp", "--dport", "80", "-j", "DNAT", "--to-destination", f"{SERVER_IP}:80"],
            netns=node,
        )  # fmt: skip
        tmp = Path(tempfile.mkdtemp(prefix=f"{prefix}-nginx-"))
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        conf = tmp / "nginx.conf"
        conf.write_text(NGINX_CONF.format(workers=nginx_workers, tmp=tmp))
        proc = subprocess.Popen(
            exec_argv(server, ["nginx", "-c", str(conf), "-g", "daemon off;"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        stack.callback(_stop, proc)
        _wait_listening(server, "127.0.0.1", 80, 5.0, proc)
        yield Testbed(
            prefix=prefix,
            node=node,
            server=server,
            clients=client_ns,
            client_ips=client_ips,
            nginx_pid=proc.pid,
            _all=[node, server, *client_ns],
        )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    if proc.stderr is not None:
        proc.stderr.close()
