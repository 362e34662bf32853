"""Node-level changes through a privileged, hostNetwork DaemonSet that undoes itself.

A hostNetwork pod shares its node's network namespace, so writing ``/proc/sys/net/...`` there
sets the node's per-namespace conntrack sysctls (and, on a real node, the global
``nf_conntrack_max``, which is writable only in the init namespace). The container:

1. saves every value it will change into an emptyDir (only on its first start, so a container
   restart never mistakes our value for the original),
2. writes the new values and loads the optional nft fault table,
3. waits; on TERM (the DaemonSet's deletion) writes the saved values back and deletes the table.

Deleting the DaemonSet therefore restores the node; a sweeper that deletes leftovers by label
restores a node a killed run left changed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from harness.backends.kube.names import TUNER_PREFIX, run_labels
from harness.backends.kube.placement import NodeMap
from harness.errors import BadInput
from harness.scenario.model import ConntrackSysctls, NodeSysctls, Phase, RaceWindowFault

# Scenario field -> sysctl name. Only per-namespace conntrack knobs and the two global sizes.
SYSCTL_NAMES: dict[str, str] = {
    "nf_conntrack_max": "net.netfilter.nf_conntrack_max",
    "nf_conntrack_buckets": "net.netfilter.nf_conntrack_buckets",
    "tcp_timeout_time_wait": "net.netfilter.nf_conntrack_tcp_timeout_time_wait",
    "tcp_timeout_close": "net.netfilter.nf_conntrack_tcp_timeout_close",
    "udp_timeout": "net.netfilter.nf_conntrack_udp_timeout",
    "udp_timeout_stream": "net.netfilter.nf_conntrack_udp_timeout_stream",
}
GLOBAL_SYSCTLS = frozenset({SYSCTL_NAMES["nf_conntrack_max"], SYSCTL_NAMES["nf_conntrack_buckets"]})
ACCT = "net.netfilter.nf_conntrack_acct"
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
touch /state/ready
while :; do sleep 3600 & wait $! || true; done
"""


def node_sysctls(values: NodeSysctls | ConntrackSysctls, *, include_global: bool) -> dict[str, str]:
    """The sysctls a NodeSysctls/ConntrackSysctls asks for, by full name.

    ``include_global`` is false on kind and k3s: there the nodes are containers, the global
    sizes are read-only inside them, and the host guard sets them instead.
    """
    out: dict[str, str] = {}
    max_ = values.nf_conntrack_max
    for field, name in SYSCTL_NAMES.items():
        value = getattr(values, field, None)
        if value is None:
            continue
        if name in GLOBAL_SYSCTLS and not include_global:
            continue
        if value == "auto":
            if max_ is None:
                raise BadInput(
                    "nf_conntrack_buckets 'auto' needs nf_conntrack_max",
                    field="nf_conntrack_buckets",
                    value=value,
                )
            value = max(max_ // 4, 1)
        out[name] = str(value)
    return out


def race_ruleset(table: str, probability: float) -> str:
    """The injected race window: drop, with probability P, the second original-direction
    UDP/53 packet of a conntrack entry that has had no reply yet (forward hook of the node)."""
    if not 0 < probability <= 1:
        raise BadInput(
            "probability must be in (0, 1]", field="faults.probability", value=probability
        )
    pct = round(probability * 100)
    match = "meta l4proto udp th dport 53 ct original packets 2 ct reply packets 0"
    # nft rejects "< 100" for numgen; at P=100 the random match is simply left out.
    rand = "" if pct >= 100 else f" numgen random mod 100 < {pct}"
    return (
        f"table inet {table} {{\n"
        "  chain race_window {\n"
        "    type filter hook forward priority filter; policy accept;\n"
        f"    {match}{rand} counter drop\n"
        "  }\n"
        "}\n"
    )


def fault_table(run_id: str) -> str:
    return "cth_race_" + run_id.replace("-", "_")


def phase_changes(
    phase: Phase, run_id: str, *, include_global: bool
) -> tuple[dict[str, str], str | None]:
    """(sysctls, nft ruleset or None) a phase asks of every node."""
    sysctls: dict[str, str] = {}
    for rem in phase.remediations:
        if isinstance(rem, ConntrackSysctls):
            sysctls.update(node_sysctls(rem, include_global=include_global))
    ruleset = None
    faults = [f for f in phase.faults if isinstance(f, RaceWindowFault)]
    if faults:
        sysctls[ACCT] = "1"  # 'ct original packets' needs per-entry packet accounting
        ruleset = race_ruleset(fault_table(run_id), max(f.probability for f in faults))
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
) -> dict[str, Any]:
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


def probe_daemonset(run_id: str, namespace: str, nodes: NodeMap, image: str) -> dict[str, Any]:
    """Unprivileged hostNetwork pods, one per node, to read the node's conntrack counters."""
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
                            "securityContext": {"allowPrivilegeEscalation": False},
                        }
                    ],
                },
            },
        },
    }
