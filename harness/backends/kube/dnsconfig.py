"""A pod's ``dnsPolicy``/``dnsConfig``: the scenario's DNSConfig plus a phase's remediations.

Pure logic. The result is always ``dnsPolicy: None`` with explicit nameservers, searches and
options: with ``ClusterFirst`` kubelet appends the node's own search domains (on a CI runner,
the cloud's), which would change how many queries one lookup sends, and the same scenario must
send the same queries on every backend. So "ClusterFirst" is rendered as what kubelet would
write for it, ``<ns>.svc.<domain> svc.<domain> <domain>``, without the host's extras.

The scenario is written against its own namespace name (``cluster.namespace``, "default" by
default); a backend runs it in a per-run namespace, so names and search domains that mention the
scenario's namespace are translated to the run's (:class:`NamespaceMap`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.backends.kube.names import NODELOCAL_IP
from harness.dns.resolvconf import MAXNS, ResolvConf
from harness.errors import BadInput
from harness.scenario.model import (
    FQDN,
    DNSConfig,
    NodeLocalDNS,
    Phase,
    ResolverOption,
    Scenario,
)

# Kubernetes' own limits on dnsConfig (validation.go): 3 nameservers, 32 search domains.
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048


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

    def fqdn(self, name: str, external: Sequence[str]) -> str:
        """The absolute name a lookup of ``name`` was meant to find (the FQDN remediation)."""
        if name.endswith("."):
            return self.name(name)
        translated = self.name(name)
        if translated in external or translated.endswith(f".{self.domain}"):
            return translated + "."
        dots = translated.count(".")
        if dots == 0:
            return f"{translated}.{self.run_ns}.svc.{self.domain}."
        if dots == 1:
            return f"{translated}.svc.{self.domain}."
        return translated + "."


@dataclass(frozen=True)
class PodDNS:
    """The resolver settings a client pod gets, already resolved to addresses."""

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


def phase_dns_config(base: DNSConfig, phase: Phase | None) -> DNSConfig:
    """The scenario's DNSConfig with the phase's resolver remediations folded in."""
    if phase is None:
        return base
    nameservers = list(base.nameservers)
    options = {o.name: o for o in base.options}
    for rem in phase.remediations:
        if isinstance(rem, ResolverOption):
            for opt in rem.options:
                options[opt.name] = opt
        elif isinstance(rem, NodeLocalDNS):
            nameservers = ["nodelocal" if ns == "cluster-dns" else ns for ns in nameservers]
            if "nodelocal" not in nameservers:
                nameservers.insert(0, "nodelocal")
    deduped = list(dict.fromkeys(nameservers))[:MAXNS]
    return base.model_copy(update={"nameservers": deduped, "options": list(options.values())})


def pod_dns(
    config: DNSConfig,
    nsmap: NamespaceMap,
    kube_dns_ip: str,
) -> PodDNS:
    """Resolve symbolic nameservers and the default search list into a concrete PodDNS."""
    servers: list[str] = []
    for ns in config.nameservers:
        if ns == "cluster-dns":
            servers.append(kube_dns_ip)
        elif ns == "nodelocal":
            servers.append(NODELOCAL_IP)
        else:
            servers.append(ns)
    servers = list(dict.fromkeys(servers))
    if config.searches is None:
        searches = [f"{nsmap.run_ns}.svc.{nsmap.domain}", f"svc.{nsmap.domain}", nsmap.domain]
    else:
        searches = [nsmap.search_domain(s) for s in config.searches]
    if len(searches) > MAX_SEARCHES or len(" ".join(searches)) > MAX_SEARCH_CHARS:
        raise BadInput(
            f"Kubernetes allows at most {MAX_SEARCHES} search domains, {MAX_SEARCH_CHARS} "
            "characters in all",
            field="cluster.dns_config.searches",
            value=searches,
        )
    options = tuple((o.name, o.value) for o in config.options)
    return PodDNS(tuple(servers), tuple(searches), options)


def client_pod_dns(
    scenario: Scenario, phase: Phase | None, nsmap: NamespaceMap, kube_dns_ip: str
) -> PodDNS:
    return pod_dns(phase_dns_config(scenario.cluster.dns_config, phase), nsmap, kube_dns_ip)


def uses_fqdn(phase: Phase | None) -> bool:
    return phase is not None and any(isinstance(r, FQDN) for r in phase.remediations)


def uses_nodelocal(scenario: Scenario, phase: Phase | None) -> bool:
    if scenario.cluster.nodelocal_dns:
        return True
    return phase is not None and any(isinstance(r, NodeLocalDNS) for r in phase.remediations)
