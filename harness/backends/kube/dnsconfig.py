"""A client pod's ``dnsPolicy``/``dnsConfig`` on a real cluster, from the phase plan (pure).

kubelet's rules are applied once, in :mod:`harness.plan.kubelet`; this module only renders the
result for a pod spec. It is always ``dnsPolicy: None`` with explicit nameservers, searches and
options: with ``ClusterFirst`` kubelet appends the node's own search domains (on a CI runner,
the cloud's), which would change how many queries one lookup sends, and the same scenario must
send the same queries on every backend.

The scenario is written against its own namespace name (``cluster.namespace``, "default" by
default); a backend runs it in a per-run namespace, so names and search domains that mention the
scenario's namespace are translated to the run's (:class:`NamespaceMap`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cthcommon.resolvconf import ResolvConf
from harness.backends.kube.names import NODELOCAL_IP
from harness.plan.types import PodDNS


@dataclass(frozen=True)
class NamespaceMap:
    """Maps the scenario's namespace onto the run's namespace, within one cluster domain."""

    scenario_ns: str
    run_ns: str
    domain: str

    def search_domain(self, domain: str) -> str:
        d = domain.rstrip(".")
        if d == f"{self.scenario_ns}.svc.{self.domain}":
            return f"{self.run_ns}.svc.{self.domain}"
        return d

    def name(self, name: str) -> str:
        """``svc.<scenario ns>[.svc.<domain>][.]`` -> the same name in the run's namespace."""
        absolute = name.endswith(".")
        labels = name.rstrip(".").split(".")
        tail = ["svc", *self.domain.split(".")]
        short = len(labels) == 2
        qualified = len(labels) == 2 + len(tail) and labels[2:] == tail
        if (short or qualified) and labels[1] == self.scenario_ns:
            labels[1] = self.run_ns
        out = ".".join(labels)
        return out + "." if absolute else out


@dataclass(frozen=True)
class PodDNSConfig:
    """The resolver settings a client pod gets, resolved to addresses in the run's namespace."""

    nameservers: tuple[str, ...]
    searches: tuple[str, ...]
    options: tuple[tuple[str, str | None], ...]

    def manifest(self) -> dict[str, Any]:
        """The pod-spec fragment: ``dnsPolicy`` and ``dnsConfig``."""
        options: list[dict[str, str]] = []
        for name, value in self.options:
            options.append({"name": name} if value is None else {"name": name, "value": value})
        return {
            "dnsPolicy": "None",
            "dnsConfig": {
                "nameservers": list(self.nameservers),
                "searches": list(self.searches),
                "options": options,
            },
        }

    def resolv_conf(self) -> ResolvConf:
        """What kubelet will write into the pod's /etc/resolv.conf (validated)."""
        return ResolvConf.build(self.nameservers, self.searches, dict(self.options))


def pod_dns(plan: PodDNS, nsmap: NamespaceMap, kube_dns_ip: str) -> PodDNSConfig:
    """The phase plan's pod DNS with the cluster's kube-dns IP and the run's namespace."""
    return PodDNSConfig(
        plan.addresses(kube_dns_ip, NODELOCAL_IP),
        tuple(nsmap.search_domain(s) for s in plan.searches),
        plan.options,
    )
