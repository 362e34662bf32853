"""kube-proxy on the netns nodes: what each node's nat/filter/raw tables hold, and loading it.

The one place the netns backend decides the Service data path: the rules are rendered by
:mod:`harness.kubeproxy.rules` (iptables mode) for the CoreDNS replicas in service, with
NodeLocal DNSCache's NOTRACK/ACCEPT rules (:mod:`harness.dataplane.nodelocal`) while it runs,
and each node gets them in one atomic ``iptables-restore``. Swapping in the real kube-proxy
later replaces this module only.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.backends.netns import plan as P
from harness.backends.netns.plan import TopologyPlan
from harness.dataplane import nodelocal
from harness.errors import BackendError
from harness.kernel.netns import run
from harness.kubeproxy.rules import render_filter, render_nat
from harness.plan.types import KubeProxyPlan


@dataclass(frozen=True)
class ProxyState:
    """What the nodes' Service rules reflect."""

    proxy: KubeProxyPlan
    coredns_replicas: int
    nodelocal: bool = False


def node_rules(plan: TopologyPlan, state: ProxyState) -> str:
    """One node's nat, filter and raw tables, as iptables-restore input (pure)."""
    if state.proxy.mode != "iptables":
        raise BackendError(
            f"kube-proxy mode {state.proxy.mode!r}: the netns rules are iptables mode only"
        )
    local = state.nodelocal
    nat = render_nat(
        plan.services(state.coredns_replicas),
        cluster_cidr=P.CLUSTER_CIDR,
        masquerade_all=state.proxy.masquerade_all,
    )
    flt = render_filter(
        cluster_cidr=P.CLUSTER_CIDR, extra=nodelocal.filter_rules() if local else None
    )
    raw = nodelocal.render_raw() if local else "*raw\nCOMMIT\n"
    return nat + flt + raw


def apply(plan: TopologyPlan, state: ProxyState) -> None:
    """(Re)write every node's tables, atomically per node."""
    rules = node_rules(plan, state)
    for node in plan.nodes:
        run(["iptables-restore"], netns=node.ns, input_=rules)
