"""Fakes for the kube backends: an in-memory API server and a recording command runner."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harness.backends.kube.placement import HOSTNAME_LABEL
from harness.backends.kube.proc import Completed
from harness.scenario.loader import parse_scenario
from harness.scenario.model import Scenario

KUBEADM_COREFILE = """.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
"""

# a Corefile whose root block already has a hosts plugin (a second one there is refused)
HOSTS_COREFILE = """.:53 {
    errors
    health
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }
    hosts /etc/coredns/NodeHosts {
      ttl 60
      reload 15s
      fallthrough
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
    import /etc/coredns/custom/*.override
}
import /etc/coredns/custom/*.server
"""


def scenario(**overrides: Any) -> Scenario:
    data: dict[str, Any] = {
        "name": "t",
        "phases": [
            {"name": "baseline"},
            {
                "name": "reopen",
                "remediations": [
                    {"kind": "resolver-option", "options": [{"name": "single-request-reopen"}]}
                ],
            },
            {"name": "nodelocal", "remediations": ["nodelocal-dns"]},
            {"name": "fqdn", "remediations": ["fqdn", "pooling"]},
            {
                "name": "coredns",
                "remediations": [{"kind": "coredns", "cache": False, "replicas": 3}],
            },
            {
                "name": "sysctls",
                "remediations": [
                    {
                        "kind": "conntrack-sysctls",
                        "nf_conntrack_max": 4096,
                        "nf_conntrack_buckets": "auto",
                        "tcp_timeout_time_wait": 30,
                    }
                ],
            },
            {"name": "race", "faults": [{"kind": "race-window", "probability": 0.5}]},
        ],
    }
    data.update(overrides)
    return parse_scenario(data)


def node(
    name: str, labels: Mapping[str, str] | None = None, *, ready: bool = True, taint: bool = False
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {HOSTNAME_LABEL: name, **(labels or {})}},
        "spec": {
            "taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]
        }
        if taint
        else {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "nodeInfo": {"kernelVersion": "6.18.0"},
        },
    }


def _merge(dst: dict[str, Any], patch: Mapping[str, Any]) -> None:
    for k, v in patch.items():
        if v is None:
            dst.pop(k, None)
        elif isinstance(v, Mapping) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = copy.deepcopy(v)


class FakeAPI:
    """Stores objects; everything applied becomes Ready at once. Records every call."""

    def __init__(self, objects: Sequence[Mapping[str, Any]] = ()) -> None:
        self.objects: dict[tuple[str, str | None, str], dict[str, Any]] = {}
        self.calls: list[tuple[str, str, str | None, str]] = []
        for o in objects:
            self._store(o)

    def _key(self, kind: str, name: str, ns: str | None) -> tuple[str, str | None, str]:
        return kind, ns, name

    def _store(self, obj: Mapping[str, Any]) -> None:
        o = copy.deepcopy(dict(obj))
        meta = o["metadata"]
        meta.setdefault("generation", 1)
        kind = o["kind"]
        if kind == "Deployment":
            n = o["spec"].get("replicas", 1)
            o["status"] = {
                "observedGeneration": meta["generation"],
                "replicas": n,
                "readyReplicas": n,
                "updatedReplicas": n,
            }
        elif kind == "DaemonSet":
            o["status"] = {
                "observedGeneration": meta["generation"],
                "desiredNumberScheduled": 2,
                "numberReady": 2,
                "updatedNumberScheduled": 2,
            }
        elif kind == "Pod":
            o.setdefault(
                "status",
                {
                    "phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "podIP": f"10.244.1.{len(self.objects) % 250 + 2}",
                },
            )
        elif kind == "Service":
            o.setdefault("spec", {}).setdefault("clusterIP", f"10.96.7.{len(self.objects) % 250}")
        self.objects[self._key(kind, meta["name"], meta.get("namespace"))] = o

    def apply(self, obj: Mapping[str, Any]) -> None:
        m = obj["metadata"]
        self.calls.append(("apply", obj["kind"], m.get("namespace"), m["name"]))
        self._store(obj)
        if obj["kind"] == "DaemonSet" and m["name"] == "node-probe":
            for i, nd in enumerate(("w1", "w2")):
                self._store(
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {
                            "name": f"node-probe-{i}",
                            "namespace": m["namespace"],
                            "labels": obj["spec"]["template"]["metadata"]["labels"],
                        },
                        "spec": {"nodeName": nd},
                    }
                )

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        o = self.objects.get(self._key(kind, name, namespace))
        return copy.deepcopy(o) if o is not None else None

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        want = dict(p.split("=", 1) for p in label_selector.split(",")) if label_selector else {}
        out = []
        for (k, ns, _), o in sorted(self.objects.items(), key=lambda kv: str(kv[0])):
            if k != kind or (namespace is not None and ns != namespace):
                continue
            labels = o["metadata"].get("labels") or {}
            if all(labels.get(a) == b for a, b in want.items()):
                out.append(copy.deepcopy(o))
        return out

    def patch(
        self, api_version: str, kind: str, name: str, namespace: str | None, body: Mapping[str, Any]
    ) -> None:
        self.calls.append(("patch", kind, namespace, name))
        o = self.objects[self._key(kind, name, namespace)]
        _merge(o, body)
        o["metadata"]["generation"] += 1
        self._store(o)

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        self.calls.append(("delete", kind, namespace, name))
        self.objects.pop(self._key(kind, name, namespace), None)
        if kind == "Namespace":
            for key in [k for k in self.objects if k[1] == name]:
                del self.objects[key]


def cluster_objects(
    nodes: Sequence[dict[str, Any]], corefile: str = KUBEADM_COREFILE
) -> list[dict[str, Any]]:
    return [
        *nodes,
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system"},
            "spec": {"clusterIP": "10.96.0.10"},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "coredns", "namespace": "kube-system"},
            "data": {"Corefile": corefile},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "coredns", "namespace": "kube-system"},
            "spec": {"replicas": 2, "template": {"spec": {}}},
        },
    ]


Answer = str | Callable[[Sequence[str], str | None], str]


class FakeRunner:
    """Records argv; answers from a table of (argv prefix or suffix -> stdout, or a function
    of (argv, stdin) -> stdout). A key starting with "..." matches a run of argv anywhere."""

    def __init__(self, answers: Mapping[tuple[str, ...], Answer] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.inputs: list[str | None] = []
        self.answers = dict(answers or {})

    def __call__(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        timeout_s: float = 600,
        check: bool = True,
    ) -> Completed:
        self.calls.append(list(argv))
        self.inputs.append(input)
        for key, out in self.answers.items():
            if key[:1] == ("...",):
                n = len(key) - 1
                hit = any(tuple(argv[i : i + n]) == key[1:] for i in range(len(argv) - n + 1))
            else:
                hit = tuple(argv[: len(key)]) == key
            if hit:
                text = out if isinstance(out, str) else out(argv, input)
                return Completed(list(argv), 0, text, "")
        return Completed(list(argv), 0, "", "")
