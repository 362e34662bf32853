"""Node-level changes through a privileged, hostNetwork DaemonSet that undoes itself.

A hostNetwork pod shares its node's network namespace, so writing ``/proc/sys/net/...`` there
sets the node's per-namespace conntrack sysctls (and, on a real node, the global
``nf_conntrack_max``, which is writable only in the init namespace). The container:

1. saves every value it will change into an emptyDir (only on its first start, so a container
   restart never mistakes our value for the original),
2. writes the new values, loads the optional nft table (the injected fault, or the NodeLocal
   stand-in's NOTRACK rules) and adds the optional interface (NodeLocal's listen addresses,
   as the ``ip -batch`` text a netns node loads: :mod:`harness.dataplane.nodelocal`),
3. waits; on TERM (the DaemonSet's deletion) writes the saved values back and deletes the
   table and the interface.

Deleting the DaemonSet therefore restores the node; a sweeper that deletes leftovers by label
restores a node a killed run left changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from cthcommon.errors import BadInput
from harness.backends.kube.names import TUNER_PREFIX, run_labels
from harness.backends.kube.placement import NodeMap
from harness.dataplane.faults import race_window_ruleset
from harness.dataplane.nodelocal import interface_batch
from harness.plan.types import CONNTRACK_BUCKETS, CONNTRACK_MAX, PhasePlan, SysctlPlan

GLOBAL_SYSCTLS = frozenset({CONNTRACK_MAX, CONNTRACK_BUCKETS})
_SYSCTL = re.compile(r"^net\.netfilter\.nf_conntrack_[a-z_]+$")

SCRIPT = r"""set -eu
state=/state/saved
if [ ! -f "$state" ]; then
  : > "$state.tmp"
  for kv in $SYSCTLS; do
    k=${kv%%=*}; p=/proc/sys/$(echo "$k" | tr . /)
    echo "$p $(cat "$p")" >> "$state.tmp"
  done
  mv "$state.tmp" "$state"
fi
restore() {
  if [ -n "${NFT_TABLE:-}" ]; then nft delete table inet "$NFT_TABLE" 2>/dev/null || true; fi
  if [ -n "${LINK_NAME:-}" ]; then ip link del "$LINK_NAME" 2>/dev/null || true; fi
  while read -r p v; do echo "$v" > "$p" || echo "restore failed: $p" >&2; done < "$state"
  exit 0
}
trap restore TERM INT
for kv in $SYSCTLS; do
  k=${kv%%=*}; v=${kv#*=}; echo "$v" > "/proc/sys/$(echo "$k" | tr . /)"
done
if [ -n "${NFT_RULESET:-}" ]; then
  nft delete table inet "$NFT_TABLE" 2>/dev/null || true
  printf '%s\n' "$NFT_RULESET" | nft -f -
fi
if [ -n "${LINK_NAME:-}" ]; then
  ip link del "$LINK_NAME" 2>/dev/null || true
  printf '%s' "$LINK_BATCH" | ip -b -
fi
touch /state/ready
while :; do sleep 3600 & wait $! || true; done
"""


def node_sysctls(values: SysctlPlan, *, include_global: bool) -> dict[str, str]:
    """The sysctls a plan asks of every node, by full name.

    ``include_global`` is false on kind: there the nodes are containers, the global
    sizes are read-only inside them, and the host guard sets them instead.
    """
    out = {k: str(v) for k, v in values.global_values().items()} if include_global else {}
    out.update((k, str(v)) for k, v in values.per_node)
    return out


def fault_table(run_id: str) -> str:
    return "cth_race_" + run_id.replace("-", "_")


def phase_changes(
    plan: PhasePlan, run_id: str, *, include_global: bool
) -> tuple[dict[str, str], str | None]:
    """(sysctls every node gets, nft fault ruleset or None). nf_conntrack_acct for the fault is
    among the plan's sysctls; the ruleset goes only to ``plan.fault.nodes``."""
    sysctls = node_sysctls(plan.sysctls, include_global=include_global)
    ruleset = None
    if plan.fault is not None:
        ruleset = race_window_ruleset(plan.fault.percent, fault_table(run_id))
    return sysctls, ruleset


def daemonset(
    run_id: str,
    namespace: str,
    name: str,
    *,
    sysctls: Mapping[str, str],
    nodes: NodeMap,
    image: str,
    ruleset: str | None = None,
    table: str | None = None,
    link: tuple[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """A node tuner: sets ``sysctls``, loads ``ruleset`` (an nft ``table``) and adds ``link``
    (an empty bridge holding the addresses) on each node; deleting the DaemonSet puts every
    one of them back."""
    for key, value in sysctls.items():
        if not _SYSCTL.match(key) or not str(value).lstrip("-").isdigit():
            raise BadInput(
                "the node tuner sets only whole-number net.netfilter.nf_conntrack_* sysctls",
                field="sysctls",
                value=f"{key}={value}",
            )
    if not name.startswith(TUNER_PREFIX):
        raise BadInput("tuner DaemonSets are named node-tuner-*", field="name", value=name)
    labels = run_labels(run_id, "node-tuner")
    selector = {"app": name, **run_labels(run_id)}
    env = [{"name": "SYSCTLS", "value": " ".join(f"{k}={v}" for k, v in sorted(sysctls.items()))}]
    if ruleset is not None:
        env += [
            {"name": "NFT_RULESET", "value": ruleset},
            {"name": "NFT_TABLE", "value": table or ""},
        ]
    if link is not None:
        env += [
            {"name": "LINK_NAME", "value": link[0]},
            {"name": "LINK_BATCH", "value": interface_batch(link[1], link[0])},
        ]
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": {**selector, **labels}},
                "spec": {
                    "hostNetwork": True,
                    "dnsPolicy": "ClusterFirstWithHostNet",
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 30,
                    "affinity": nodes.affinity(),
                    "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [
                        {
                            "name": "tuner",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": ["/bin/sh", "-c", SCRIPT],
                            "env": env,
                            "securityContext": {"privileged": True},
                            "readinessProbe": {
                                "exec": {"command": ["cat", "/state/ready"]},
                                "periodSeconds": 1,
                            },
                            "volumeMounts": [{"name": "state", "mountPath": "/state"}],
                        }
                    ],
                    "volumes": [{"name": "state", "emptyDir": {}}],
                },
            },
        },
    }


def probe_daemonset(
    run_id: str, namespace: str, nodes: NodeMap, image: str, *, privileged: bool = False
) -> dict[str, Any]:
    """hostNetwork pods, one per node, to read the node's conntrack counters: unprivileged by
    default; ``privileged`` (``--allow-disruptive``) to list its table, rules and the fault's
    counters too (CAP_NET_ADMIN). Neither changes anything on the node."""
    security: dict[str, Any] = (
        {"privileged": True} if privileged else {"allowPrivilegeEscalation": False}
    )
    labels = run_labels(run_id, "node-probe")
    selector = {"app": "node-probe", **run_labels(run_id)}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "node-probe", "namespace": namespace, "labels": labels},
        "spec": {
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": {**selector, **labels}},
                "spec": {
                    "hostNetwork": True,
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 2,
                    "affinity": nodes.affinity(),
                    "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
                    "containers": [
                        {
                            "name": "probe",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": [
                                "/bin/sh",
                                "-c",
                                "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done",
                            ],
                            "securityContext": security,
                        }
                    ],
                },
            },
        },
    }
