"""kube-proxy iptables-mode rules, generated as iptables-restore input (pure)."""

from harness.kubeproxy.rules import (
    Endpoint,
    ServicePort,
    render_filter,
    render_nat,
    sep_chain,
    svc_chain,
)

__all__ = ["Endpoint", "ServicePort", "render_filter", "render_nat", "sep_chain", "svc_chain"]
