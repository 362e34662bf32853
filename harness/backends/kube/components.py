"""The versions of a cluster's parts, read from the live cluster for result.json's
``environment.components`` (the netns backend records its pinned binaries the same way).

Read, not intended: each node's ``status.nodeInfo`` (kubelet, container runtime, kube-proxy
where the node still reports it), the image of every container of the kube-system pods
(kube-apiserver, kube-controller-manager, kube-scheduler, etcd, kube-proxy, coredns, the
CNI's pods ...; version = the image's tag), and kube-proxy's mode from its ConfigMap. A
backend may add its own parts (kind: the node image, the kind CLI, the Docker engine) through
a ``components()`` method on its realizer.

Each entry is ``name -> {"version", "source", ...}``. Nothing here fails a run: a part that
cannot be read says why (``version: unknown``, ``source: not read: ...``), and a part that is
simply absent (no kube-proxy pods, no kube-proxy ConfigMap) is left out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import yaml

from harness.backends.kube.names import SYSTEM_NAMESPACE
from harness.kubeapi.client import KubeAPI

Component = dict[str, str]
Components = dict[str, Component]

KUBE_PROXY = "kube-proxy"
KUBE_PROXY_CONFIGMAP = "kube-proxy"
KUBE_PROXY_CONFIG_KEY = "config.conf"  # kubeadm's KubeProxyConfiguration in the ConfigMap
# status.nodeInfo field -> component name
NODE_INFO = {
    "kubeletVersion": "kubelet",
    "containerRuntimeVersion": "container-runtime",
    "kubeProxyVersion": KUBE_PROXY,  # deprecated; empty on recent kubelets
}
MAX_REASON = 300
MAX_NAMES = 4


def unread(reason: object) -> Component:
    """A part whose version could not be read, and why."""
    text = " ".join(str(reason).split())
    if len(text) > MAX_REASON:
        text = text[: MAX_REASON - 3] + "..."
    return {"version": "unknown", "source": f"not read: {text}"}


def image_version(image: str) -> str:
    """The version an image reference names: its tag (``registry.k8s.io/etcd:3.6.6-0`` ->
    ``3.6.6-0``), else its digest, else ``latest`` (what a bare name means)."""
    ref, _, digest = image.partition("@")
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        return last.rsplit(":", 1)[1]
    return digest or "latest"


def _names(names: list[str]) -> str:
    shown = sorted(names)[:MAX_NAMES]
    more = f" and {len(names) - len(shown)} more" if len(names) > len(shown) else ""
    return ", ".join(shown) + more


def _where(by_value: Mapping[str, list[str]], one: str, many: str) -> str:
    """``3 nodes (a, b, c)``; or per value when they differ: ``v1 on 2 nodes (a, b); ...``."""

    def count(names: list[str]) -> str:
        return f"{len(names)} {one if len(names) == 1 else many} ({_names(names)})"

    if len(by_value) == 1:
        return count(next(iter(by_value.values())))
    return "; ".join(f"{v} on {count(n)}" for v, n in sorted(by_value.items()))


def from_nodes(nodes: Iterable[Mapping[str, Any]]) -> Components:
    """kubelet, container runtime (and kube-proxy where reported) from ``status.nodeInfo``."""
    found: dict[str, dict[str, list[str]]] = {}
    for n in nodes:
        name = str((n.get("metadata") or {}).get("name", "?"))
        info = (n.get("status") or {}).get("nodeInfo") or {}
        for field in NODE_INFO:
            value = info.get(field)
            if value:
                found.setdefault(field, {}).setdefault(str(value), []).append(name)
    out: Components = {}
    for field, by_version in found.items():
        out[NODE_INFO[field]] = {
            "version": ", ".join(sorted(by_version)),
            "source": f"status.nodeInfo.{field} of {_where(by_version, 'node', 'nodes')}",
        }
    return out


def from_pods(pods: Iterable[Mapping[str, Any]], namespace: str = SYSTEM_NAMESPACE) -> Components:
    """Per container name, the image(s) the pods run (finished pods are skipped)."""
    images: dict[str, dict[str, list[str]]] = {}
    for p in pods:
        if (p.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            continue
        pod = str((p.get("metadata") or {}).get("name", "?"))
        for c in (p.get("spec") or {}).get("containers") or []:
            if c.get("name") and c.get("image"):
                images.setdefault(str(c["name"]), {}).setdefault(str(c["image"]), []).append(pod)
    out: Components = {}
    for name, by_image in sorted(images.items()):
        out[name] = {
            "version": ", ".join(sorted({image_version(i) for i in by_image})),
            "image": ", ".join(sorted(by_image)),
            "source": f"image of {namespace} {_where(by_image, 'pod', 'pods')}",
        }
    return out


def kube_proxy_mode(configmap: Mapping[str, Any] | None) -> str | None:
    """kube-proxy's mode from kubeadm's ConfigMap; None when there is no such ConfigMap.

    An empty mode is kube-proxy's default on Linux, iptables."""
    if configmap is None:
        return None
    text = (configmap.get("data") or {}).get(KUBE_PROXY_CONFIG_KEY)
    if text is None:
        return f"unknown (the ConfigMap has no {KUBE_PROXY_CONFIG_KEY})"
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as e:
        return f"unknown ({KUBE_PROXY_CONFIG_KEY} is not YAML: {str(e).splitlines()[0]})"
    mode = cfg.get("mode") if isinstance(cfg, dict) else None
    return str(mode) if mode else "iptables (mode unset: the Linux default)"


def _guarded(what: str, read: Callable[[], Components]) -> Components:
    try:
        return read()
    except Exception as e:  # a part that cannot be read says why; the run goes on
        return {what: unread(e)}


def read(api: KubeAPI, realizer: object = None) -> Components:
    """Every part of the cluster that can be read, each failure said; never raises."""
    out: Components = {}
    out.update(_guarded("nodes", lambda: from_nodes(api.list("v1", "Node"))))
    node_proxy = out.pop(KUBE_PROXY, None)
    pods = _guarded(
        f"{SYSTEM_NAMESPACE} pods", lambda: from_pods(api.list("v1", "Pod", SYSTEM_NAMESPACE))
    )
    out.update(pods)
    if KUBE_PROXY not in out and node_proxy is not None:
        out[KUBE_PROXY] = node_proxy  # run outside pods, say the nodes
    try:
        mode = kube_proxy_mode(api.get("v1", "ConfigMap", KUBE_PROXY_CONFIGMAP, SYSTEM_NAMESPACE))
    except Exception as e:  # e.g. forbidden on an existing cluster: say so, go on
        mode = f"unknown ({unread(e)['source']})"
    if mode is not None:
        entry = out.setdefault(
            KUBE_PROXY,
            {"version": "unknown", "source": f"no kube-proxy pod in {SYSTEM_NAMESPACE}"},
        )
        entry["mode"] = mode
        entry["mode_source"] = f"ConfigMap {SYSTEM_NAMESPACE}/{KUBE_PROXY_CONFIGMAP}"
    own = getattr(realizer, "components", None)
    if callable(own):
        out.update(_guarded(f"{getattr(realizer, 'name', 'backend')} parts", own))
    return out
