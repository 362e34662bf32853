"""Command lines and configs for the real servers in pods (pure): dnsmasq as CoreDNS, as the
upstream resolver and as NodeLocal DNSCache; nginx as the HTTP server.

dnsmasq stands in for CoreDNS: ``--local=/cluster.local/`` makes it authoritative for the
cluster domain (NXDOMAIN for unknown names, NODATA for AAAA of a known A-only name), each
Service is a ``--host-record``, and every other name is forwarded upstream.
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


def coredns_argv(
    *,
    listen_ip: str,
    records: dict[str, str],
    cluster_domain: str,
    upstream: str,
    cache: bool = True,
    max_concurrent: int | None = None,
) -> list[str]:
    argv = [
        *DNSMASQ_BASE,
        f"--listen-address={listen_ip}",
        f"--local=/{cluster_domain}/",
        f"--server={upstream}",
        # CoreDNS answers cluster names with TTL 5 (kubernetes plugin) and caches 30 s.
        "--local-ttl=5",
        f"--cache-size={10000 if cache else 0}",
        f"--dns-forward-max={max_concurrent or 1000}",
    ]
    argv += [f"--host-record={name},{ip}" for name, ip in sorted(records.items())]
    return argv


def upstream_argv(*, listen_ip: str, names: dict[str, str]) -> list[str]:
    """An "internet" resolver that knows a few names and says NXDOMAIN for the rest of
    their top-level domains (and for the usual TLDs)."""
    tlds = sorted({n.rstrip(".").rsplit(".", 1)[-1] for n in names} | {"com", "org", "net"})
    argv = [*DNSMASQ_BASE, f"--listen-address={listen_ip}", "--local-ttl=60", "--cache-size=0"]
    argv += [f"--local=/{t}/" for t in tlds]
    argv += [f"--host-record={n},{ip}" for n, ip in sorted(names.items())]
    return argv


def nodelocal_argv(
    *, listen_ip: str, cluster_domain: str, cluster_dns: str, upstream: str
) -> list[str]:
    """NodeLocal DNSCache's shape: cache on the link-local IP, cluster domain to the kube-dns
    Service, everything else upstream. (node-cache forces TCP towards kube-dns; dnsmasq has no
    per-server TCP switch, so that difference is reported, not hidden.)"""
    return [
        *DNSMASQ_BASE,
        f"--listen-address={listen_ip}",
        f"--server=/{cluster_domain}/{cluster_dns}",
        f"--server={upstream}",
        "--cache-size=10000",
        "--dns-forward-max=1000",
    ]


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


def nodelocal_unbound_conf(
    *, listen_ip: str, cluster_domain: str, cluster_dns: str, upstream: str, workdir: Path
) -> str:
    """NodeLocal DNSCache's Corefile shape, in unbound: a cache on the link-local address that
    forwards the cluster domain (and reverse zones) to the kube-dns Service **over TCP**
    (node-cache's ``force_tcp``), and everything else to the upstream resolver over UDP."""
    zones = [cluster_domain, "in-addr.arpa", "ip6.arpa"]
    fwd = "".join(
        f'forward-zone:\n    name: "{z}."\n    forward-addr: {cluster_dns}\n'
        "    forward-tcp-upstream: yes\n"
        for z in zones
    )
    insecure = "".join(f'    domain-insecure: "{z}."\n' for z in zones)
    return f"""server:
    interface: {listen_ip}
    port: 53
    do-ip6: no
    access-control: 0.0.0.0/0 allow
    username: ""
    chroot: ""
    directory: "{workdir}"
    pidfile: ""
    use-syslog: no
    logfile: ""
    verbosity: 0
    num-threads: 1
    module-config: "iterator"
    do-not-query-localhost: no
    qname-minimisation: no
    unblock-lan-zones: yes
    insecure-lan-zones: yes
    local-zone: "{cluster_domain}." nodefault
    msg-cache-size: 16m
    rrset-cache-size: 32m
    cache-max-ttl: 30
    cache-max-negative-ttl: 5
{insecure}{fwd}forward-zone:
    name: "."
    forward-addr: {upstream}
"""
