"""NodeLocal DNSCache as the upstream addon lays it out, with its values filled in.

The addon's manifest has five placeholders. Three are filled before applying (the local
address, the cluster domain, the kube-dns ClusterIP); node-cache fills the other two at start
from its ``-upstreamsvc`` Service and the node's resolv.conf. With kube-proxy in iptables mode
node-cache listens on both the link-local address and the kube-dns ClusterIP and installs
NOTRACK rules for them, so pods that keep the ClusterIP are also served locally.

``upstream`` decides where names outside the cluster domain go. The harness defaults to the
cluster DNS (the placeholder node-cache replaces with kube-dns-upstream's IP), so the
scenario's external names are answered by CoreDNS as on the other backends and nothing leaves
the cluster.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from cthcommon.errors import BadInput
from harness.backends.kube.names import (
    NODELOCAL_IMAGE,
    NODELOCAL_IP,
    NODELOCAL_NAME,
    NODELOCAL_UPSTREAM_SERVICE,
    SYSTEM_NAMESPACE,
    run_labels,
)

CLUSTER_DNS_PLACEHOLDER = "__PILLAR__CLUSTER__DNS__"
UPSTREAM_PLACEHOLDER = "__PILLAR__UPSTREAM__SERVERS__"
METRICS_PORT = 9253
HEALTH_PORT = 8080


def corefile(
    domain: str,
    kube_dns_ip: str,
    local_ip: str = NODELOCAL_IP,
    upstream: str = CLUSTER_DNS_PLACEHOLDER,
) -> str:
    """node-cache's Corefile: the cluster domain, the two reverse zones, then everything else."""
    for field, value in (("kube_dns_ip", kube_dns_ip), ("local_ip", local_ip)):
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise BadInput("not an IP address", field=field, value=value) from None
    bind = f"bind {local_ip} {kube_dns_ip}"

    def block(zone: str, cache: list[str], forward: list[str], health: bool) -> list[str]:
        lines = [f"{zone}:53 {{", "    errors", *cache, "    reload", "    loop", f"    {bind}"]
        lines += forward
        lines.append(f"    prometheus :{METRICS_PORT}")
        if health:
            lines.append(f"    health {local_ip}:{HEALTH_PORT}")
        lines.append("}")
        return lines

    to_cluster = [f"    forward . {CLUSTER_DNS_PLACEHOLDER} {{", "        force_tcp", "    }"]
    domain_cache = ["    cache {", "        success 9984 30", "        denial 9984 5", "    }"]
    out = block(domain, domain_cache, to_cluster, health=True)
    out += block("in-addr.arpa", ["    cache 30"], to_cluster, health=False)
    out += block("ip6.arpa", ["    cache 30"], to_cluster, health=False)
    out += block(".", ["    cache 30"], [f"    forward . {upstream}"], health=False)
    return "\n".join(out) + "\n"


def filled_corefile(base: str, cluster_dns: str, upstreams: str = "/etc/resolv.conf") -> str:
    """The two placeholders node-cache fills at start, filled the way it fills them."""
    return base.replace(CLUSTER_DNS_PLACEHOLDER, cluster_dns).replace(
        UPSTREAM_PLACEHOLDER, upstreams
    )


@dataclass(frozen=True)
class StandIn:
    """node-cache cannot be built here: its CoreDNS core (``image``, the pinned CoreDNS) runs
    node-cache's Corefile with the placeholders filled as node-cache fills them
    (``cluster_dns``: the kube-dns-upstream Service's ClusterIP). node-cache's interface and
    NOTRACK rules come from the node tuner (:func:`harness.dataplane.nodelocal.nft_ruleset`)."""

    image: str
    cluster_dns: str

    @property
    def label(self) -> str:
        return (
            f"stand-in: {self.image} runs node-cache's Corefile; node-cache's interface and "
            "NOTRACK rules are added by the node tuner (k8s.io/dns cannot be built here)"
        )


def stand_in_component(image: str, version: str, why: str) -> dict[str, str]:
    """result.json's ``environment.components["node-cache"]`` where a stand-in ran."""
    return {
        "version": version,
        "source": f"stand-in: {image} runs node-cache's Corefile; node-cache's interface and "
        f"NOTRACK rules come from a node tuner ({why})",
    }


def manifests(
    run_id: str,
    domain: str,
    kube_dns_ip: str,
    *,
    image: str = NODELOCAL_IMAGE,
    local_ip: str = NODELOCAL_IP,
    upstream: str = CLUSTER_DNS_PLACEHOLDER,
    stand_in: StandIn | None = None,
) -> list[dict[str, Any]]:
    """ServiceAccount, upstream Service, ConfigMap, DaemonSet and metrics Service (kube-system).
    With ``stand_in``, the DaemonSet runs it instead of node-cache (labelled)."""
    labels = run_labels(run_id, "nodelocaldns")
    meta = {"namespace": SYSTEM_NAMESPACE, "labels": labels}
    app = {"k8s-app": NODELOCAL_NAME}
    dns_ports = [
        {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
        {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
    ]
    objs: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": NODELOCAL_NAME, **meta},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": NODELOCAL_UPSTREAM_SERVICE,
                **meta,
                "labels": {**labels, "k8s-app": "kube-dns"},
            },
            "spec": {"selector": {"k8s-app": "kube-dns"}, "ports": dns_ports},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": NODELOCAL_NAME, **meta},
            "data": {"Corefile": corefile(domain, kube_dns_ip, local_ip, upstream)},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "DaemonSet",
            "metadata": {"name": NODELOCAL_NAME, **meta, "labels": {**labels, **app}},
            "spec": {
                "updateStrategy": {"rollingUpdate": {"maxUnavailable": "10%"}},
                "selector": {"matchLabels": app},
                "template": {
                    "metadata": {"labels": {**app, **labels}},
                    "spec": {
                        "priorityClassName": "system-node-critical",
                        "serviceAccountName": NODELOCAL_NAME,
                        "hostNetwork": True,
                        "dnsPolicy": "Default",
                        "tolerations": [
                            {"key": "CriticalAddonsOnly", "operator": "Exists"},
                            {"effect": "NoExecute", "operator": "Exists"},
                            {"effect": "NoSchedule", "operator": "Exists"},
                        ],
                        "containers": [
                            {
                                "name": "node-cache",
                                "image": image,
                                "resources": {"requests": {"cpu": "25m", "memory": "5Mi"}},
                                "args": [
                                    "-localip",
                                    f"{local_ip},{kube_dns_ip}",
                                    "-conf",
                                    "/etc/Corefile",
                                    "-upstreamsvc",
                                    NODELOCAL_UPSTREAM_SERVICE,
                                    "-pidfile",
                                    "/tmp/node-cache.pid",
                                ],
                                "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}},
                                "ports": [
                                    {"containerPort": 53, "name": "dns", "protocol": "UDP"},
                                    {"containerPort": 53, "name": "dns-tcp", "protocol": "TCP"},
                                    {
                                        "containerPort": METRICS_PORT,
                                        "name": "metrics",
                                        "protocol": "TCP",
                                    },
                                ],
                                "livenessProbe": {
                                    "httpGet": {
                                        "host": local_ip,
                                        "path": "/health",
                                        "port": HEALTH_PORT,
                                    },
                                    "initialDelaySeconds": 60,
                                    "timeoutSeconds": 5,
                                },
                                "volumeMounts": [
                                    {
                                        "name": "xtables-lock",
                                        "mountPath": "/run/xtables.lock",
                                        "readOnly": False,
                                    },
                                    {"name": "config-volume", "mountPath": "/etc/coredns"},
                                    {"name": "kube-dns-config", "mountPath": "/etc/kube-dns"},
                                ],
                            }
                        ],
                        "volumes": [
                            {
                                "name": "xtables-lock",
                                "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"},
                            },
                            {
                                "name": "kube-dns-config",
                                "configMap": {"name": "kube-dns", "optional": True},
                            },
                            {
                                "name": "config-volume",
                                "configMap": {
                                    "name": NODELOCAL_NAME,
                                    "items": [{"key": "Corefile", "path": "Corefile.base"}],
                                },
                            },
                        ],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": NODELOCAL_NAME, **meta, "labels": {**labels, **app}},
            "spec": {
                "clusterIP": "None",
                "selector": app,
                "ports": [{"name": "metrics", "port": METRICS_PORT, "targetPort": METRICS_PORT}],
            },
        },
    ]
    if stand_in is not None:
        _as_stand_in(objs, stand_in)
    return objs


def _as_stand_in(objs: list[dict[str, Any]], stand_in: StandIn) -> None:
    """The ConfigMap holds the filled Corefile; the DaemonSet's container runs CoreDNS on it."""
    cm = next(o for o in objs if o["kind"] == "ConfigMap")
    cm["data"]["Corefile"] = filled_corefile(cm["data"]["Corefile"], stand_in.cluster_dns)
    ds = next(o for o in objs if o["kind"] == "DaemonSet")
    ds["metadata"]["annotations"] = {"conntrack-harness/stand-in": stand_in.label}
    pod = ds["spec"]["template"]["spec"]
    c = pod["containers"][0]
    c["image"] = stand_in.image
    c["args"] = ["-conf", "/etc/coredns/Corefile"]
    c.pop("securityContext", None)  # the tuner makes the interface and rules, not this pod
    vol = next(v for v in pod["volumes"] if v["name"] == "config-volume")
    vol["configMap"]["items"] = [{"key": "Corefile", "path": "Corefile"}]
