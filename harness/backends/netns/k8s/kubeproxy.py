"""Real kube-proxy in a node namespace (iptables or nftables mode).

The config leaves every conntrack sysctl alone: ``maxPerCore: 0`` (no table size, no hash
size), and zero TCP/UDP timeouts, which kube-proxy reads as "do not set". The harness owns
those sysctls; kube-proxy only writes its rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from cthcommon.errors import BadInput
from cthcommon.netns import http_get
from harness.backends.netns.k8s.procs import Components
from harness.kernel.kubeproxywatch import METRICS_PORT
from harness.kernel.process import Proc
from harness.kubeapi.wait import wait_for

MODES = ("iptables", "nftables")
# set to the wall clock at the end of each successful rules sync (absent before the first)
LAST_SYNC_METRIC = "kubeproxy_sync_proxy_rules_last_timestamp_seconds"
HEALTHZ_PORT = 10256


@dataclass(frozen=True)
class KubeProxySettings:
    mode: str = "iptables"
    masquerade_all: bool = False
    cluster_cidr: str = "10.244.0.0/16"
    sync_period: str = "30s"
    min_sync_period: str = "1s"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise BadInput(
                "unknown kube-proxy mode",
                field="cluster.kube_proxy.mode",
                value=self.mode,
                allowed=list(MODES),
            )


def config(node_name: str, kubeconfig: Path, s: KubeProxySettings) -> str:
    """The KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1) for one node."""
    sync = {"syncPeriod": s.sync_period, "minSyncPeriod": s.min_sync_period}
    cfg = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": node_name,
        "mode": s.mode,
        "clusterCIDR": s.cluster_cidr,
        "detectLocalMode": "ClusterCIDR",
        "iptables": {"masqueradeAll": s.masquerade_all, **sync},
        "nftables": {"masqueradeAll": s.masquerade_all, **sync},
        # the harness owns the conntrack sysctls: 0 means "leave it" for every one of these
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
            "tcpBeLiberal": False,
            "udpTimeout": "0s",
            "udpStreamTimeout": "0s",
        },
        "oomScoreAdj": 0,
        "healthzBindAddress": f"127.0.0.1:{HEALTHZ_PORT}",
        "metricsBindAddress": f"127.0.0.1:{METRICS_PORT}",
    }
    return yaml.safe_dump(cfg, sort_keys=False)


def argv(binary: Path, config_path: Path, node_name: str) -> list[str]:
    return [str(binary), f"--config={config_path}", f"--hostname-override={node_name}", "--v=1"]


def proc_name(node_name: str) -> str:
    return f"kube-proxy-{node_name}"


def start(
    comps: Components,
    binary: Path,
    *,
    node_name: str,
    node_ns: str,
    kubeconfig: Path,
    settings: KubeProxySettings,
) -> Proc:
    path = comps.file(f"{proc_name(node_name)}.yaml", config(node_name, kubeconfig, settings))
    return comps.spawn(proc_name(node_name), argv(binary, path, node_name), node_ns)


def wait_ready(proc: Proc, node_ns: str, timeout_s: float = 30) -> None:
    """Until kube-proxy's /healthz says its rules are synced."""

    def probe() -> str | None:
        status, body = http_get(node_ns, "127.0.0.1", HEALTHZ_PORT, "/healthz")
        return None if status == 200 else f"HTTP {status}: {body[:200]}"

    wait_for(f"{proc.name} /healthz", probe, timeout_s=timeout_s, procs=[proc])


def last_sync(metrics: str) -> float | None:
    """kube-proxy's ``/metrics`` text -> the wall-clock time of its last rules sync (None: no
    sync yet; the gauge is 0 or absent until the first) (pure)."""
    out: list[float] = []
    for line in metrics.splitlines():
        if line.startswith(LAST_SYNC_METRIC) and not line.startswith("#"):
            try:
                out.append(float(line.rsplit(None, 1)[-1]))
            except ValueError:
                continue
    best = max(out, default=0.0)
    return best if best > 0 else None


def read_last_sync(node_ns: str) -> float | None:
    """The running kube-proxy's last sync (wall clock), from its metrics in the node's namespace;
    None while it has not synced or does not answer yet."""
    try:
        status, body = http_get(node_ns, "127.0.0.1", METRICS_PORT, "/metrics")
    except OSError:
        return None
    return last_sync(body) if status == 200 else None
