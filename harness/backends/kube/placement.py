"""Which real Kubernetes node plays each scenario node (``node-1`` .. ``node-N``).

Pure: works on node objects as the API returns them (plain dicts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cthcommon.errors import BadInput
from harness.backends.kube.names import LABEL_NODE

HOSTNAME_LABEL = "kubernetes.io/hostname"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"


def _labels(node: Mapping[str, Any]) -> dict[str, str]:
    return dict(node.get("metadata", {}).get("labels") or {})


def node_ready(node: Mapping[str, Any]) -> bool:
    for cond in node.get("status", {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def schedulable(node: Mapping[str, Any]) -> bool:
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        return False
    return not any(t.get("effect") == "NoSchedule" for t in spec.get("taints") or [])


@dataclass(frozen=True)
class NodeMap:
    """scenario node name -> (Kubernetes node name, its hostname label)."""

    nodes: Mapping[str, str]
    hostnames: Mapping[str, str]

    def real(self, node: str) -> str:
        try:
            return self.nodes[node]
        except KeyError:
            raise BadInput(
                "not a node of this scenario", field="node", value=node, allowed=sorted(self.nodes)
            ) from None

    def selector(self, node: str) -> dict[str, str]:
        self.real(node)
        return {HOSTNAME_LABEL: self.hostnames[node]}

    def only(self, names: Sequence[str]) -> NodeMap:
        """The same mapping restricted to these scenario nodes."""
        for n in names:
            self.real(n)
        return NodeMap({n: self.nodes[n] for n in names}, {n: self.hostnames[n] for n in names})

    def affinity(self) -> dict[str, Any]:
        """Node affinity that admits exactly the mapped nodes (for DaemonSets)."""
        values = sorted(set(self.hostnames.values()))
        term = {"matchExpressions": [{"key": HOSTNAME_LABEL, "operator": "In", "values": values}]}
        return {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}
            }
        }


def _entry(node: Mapping[str, Any]) -> tuple[str, str]:
    name = str(node["metadata"]["name"])
    return name, _labels(node).get(HOSTNAME_LABEL, name)


def map_by_label(wanted: Sequence[str], nodes: Sequence[Mapping[str, Any]]) -> NodeMap:
    """kind: each worker carries ``conntrack-harness/node=node-i`` from the kind config."""
    found: dict[str, tuple[str, str]] = {}
    for n in nodes:
        label = _labels(n).get(LABEL_NODE)
        if label is not None:
            found[label] = _entry(n)
    missing = [w for w in wanted if w not in found]
    if missing:
        raise BadInput(
            f"the cluster has no node labelled {LABEL_NODE} for these scenario nodes",
            field="cluster.nodes",
            value=missing,
            allowed=sorted(found),
        )
    return NodeMap({w: found[w][0] for w in wanted}, {w: found[w][1] for w in wanted})


def map_schedulable(wanted: Sequence[str], nodes: Sequence[Mapping[str, Any]]) -> NodeMap:
    """An existing cluster: the first N Ready, schedulable nodes by name."""
    usable = sorted(_entry(n) for n in nodes if node_ready(n) and schedulable(n))
    if len(usable) < len(wanted):
        raise BadInput(
            "the cluster has fewer Ready, schedulable nodes than the scenario needs",
            field="cluster.nodes",
            value=len(wanted),
            allowed=f"at most {len(usable)}",
        )
    pairs = dict(zip(wanted, usable, strict=False))
    return NodeMap({w: p[0] for w, p in pairs.items()}, {w: p[1] for w, p in pairs.items()})
