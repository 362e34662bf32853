"""Command lines and configs for the servers that are not Kubernetes parts (pure): dnsmasq as
the upstream resolver ("the internet", outside the cluster), nginx as the HTTP server.

CoreDNS, NodeLocal DNSCache (node-cache) and kube-proxy are the real upstream components
(:mod:`harness.backends.netns.k8s`).
"""

from __future__ import annotations

from pathlib import Path

DNSMASQ_BASE = (
    "dnsmasq",
    "--keep-in-foreground",
    "--conf-file=/dev/null",
    "--no-resolv",
    "--no-hosts",
    "--no-poll",
    "--pid-file=",
    "--user=root",
    "--group=root",
    "--bind-interfaces",
    "--log-facility=-",
)


def upstream_argv(*, listen_ip: str, names: dict[str, str]) -> list[str]:
    """An "internet" resolver that knows a few names and says NXDOMAIN for the rest of
    their top-level domains (and for the usual TLDs)."""
    tlds = sorted({n.rstrip(".").rsplit(".", 1)[-1] for n in names} | {"com", "org", "net"})
    argv = [*DNSMASQ_BASE, f"--listen-address={listen_ip}", "--local-ttl=60", "--cache-size=0"]
    argv += [f"--local=/{t}/" for t in tlds]
    argv += [f"--host-record={n},{ip}" for n, ip in sorted(names.items())]
    return argv


def nginx_conf(*, listen_ip: str, workdir: Path, workers: int = 2) -> str:
    w = workdir
    return f"""
worker_processes {workers};
worker_rlimit_nofile 200000;
pid {w}/nginx.pid;
error_log {w}/error.log warn;
daemon off;
events {{ worker_connections 65535; multi_accept on; }}
http {{
    access_log off;
    client_body_temp_path {w}/body;
    proxy_temp_path {w}/proxy;
    fastcgi_temp_path {w}/fastcgi;
    uwsgi_temp_path {w}/uwsgi;
    scgi_temp_path {w}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 65s;
    server {{
        listen {listen_ip}:80 backlog=8192 reuseport;
        location / {{ return 200 "ok\\n"; }}
        location /close {{ keepalive_timeout 0; return 200 "ok\\n"; }}
    }}
}}
"""
