"""Shared helpers for the DNS model tests."""

from __future__ import annotations

from cthcommon.resolvconf import ResolvConf

SEARCH = ("default.svc.cluster.local", "svc.cluster.local", "cluster.local")


def pod_conf(*options: str, nameservers: tuple[str, ...] = ("10.96.0.10",)) -> ResolvConf:
    """A Kubernetes pod's resolv.conf (ndots:5, the three cluster search domains)."""
    text = "\n".join(f"nameserver {ns}" for ns in nameservers)
    text += "\nsearch " + " ".join(SEARCH) + "\noptions ndots:5 " + " ".join(options) + "\n"
    return ResolvConf.parse(text)
