"""The pinned upstream Kubernetes parts: where each binary lives in the cache.

Only the lookup lives here; building and downloading are in the builder modules. Cache layout
(outside the checkout; ``CONNTRACK_HARNESS_CACHE``, default ``/var/cache/conntrack-harness``)::

    <cache>/upstream/<component>-<version>/<binary>
    <cache>/upstream/<component>-<version>/.complete   # JSON: source, sha256 per binary

Components: ``kubernetes`` (kube-apiserver, kube-controller-manager, kube-proxy, ...),
``etcd``, ``coredns``, ``node-cache``.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cthcommon.errors import MissingTool

VERSIONS_FILE = Path(__file__).with_name("versions.toml")
DEFAULT_CACHE = Path("/var/cache/conntrack-harness")
STAMP = ".complete"
COMPONENTS = ("etcd", "coredns", "kubernetes", "node-cache")

# which component each binary belongs to
KUBERNETES_BINARIES = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-proxy",
    "kube-scheduler",
    "kubelet",
    "kubeadm",
    "kubectl",
)
BINARY_COMPONENT = {
    **dict.fromkeys(KUBERNETES_BINARIES, "kubernetes"),
    "etcd": "etcd",
    "coredns": "coredns",
    "node-cache": "node-cache",
}
COMPONENT_BINARIES = {
    "kubernetes": KUBERNETES_BINARIES,
    "etcd": ("etcd",),
    "coredns": ("coredns",),
    "node-cache": ("node-cache",),
}


class ComponentMissing(MissingTool):
    """A pinned upstream component is not built yet: run `conntrack-harness upstream build`."""


@dataclass(frozen=True)
class Release:
    """One Kubernetes release and the parts its kubeadm pins."""

    kubernetes: str
    etcd: str
    coredns: str
    node_cache: str
    node_cache_module_version: str = ""  # the tag's pseudo-version, when pinned
    node_cache_blocked: str = ""  # why it cannot be built here, when known

    def version_of(self, component: str) -> str:
        return {
            "kubernetes": self.kubernetes,
            "etcd": self.etcd,
            "coredns": self.coredns,
            "node-cache": self.node_cache,
        }[component]


def cache_dir() -> Path:
    return Path(os.environ.get("CONNTRACK_HARNESS_CACHE") or DEFAULT_CACHE) / "upstream"


def _versions() -> dict[str, object]:
    with VERSIONS_FILE.open("rb") as f:
        return tomllib.load(f)


def releases() -> dict[str, Release]:
    """Every Kubernetes release the versions file pins, by version."""
    data = _versions()
    nc: dict[str, Any] = data["node-cache"]  # type: ignore[assignment]
    out = {}
    for ver, parts in data["kubernetes"].items():  # type: ignore[attr-defined]
        out[ver] = Release(
            ver,
            str(parts["etcd"]),
            str(parts["coredns"]),
            str(nc["tag"]),
            str(nc.get("module_version", "")),
            str(nc.get("blocked", "")),
        )
    return out


def default_version() -> str:
    return str(_versions()["default"])


def release(kubernetes: str | None = None) -> Release:
    """The pinned release ``kubernetes`` (default: the versions file's ``default``)."""
    ver = kubernetes or str(_versions()["default"])
    known = releases()
    if ver not in known:
        from cthcommon.errors import BadInput

        raise BadInput(
            "Kubernetes version is not pinned in harness/upstream/versions.toml",
            field="cluster.kube_proxy.version",
            value=ver,
            allowed=sorted(known),
        )
    return known[ver]


def component_dir(component: str, version: str) -> Path:
    return cache_dir() / f"{component}-{version}"


def read_stamp(component: str, version: str) -> dict[str, Any] | None:
    """The ``.complete`` stamp of ``component-version``: which binaries are installed, their
    sha256 and where each came from. None when absent or unreadable."""
    try:
        data = json.loads((component_dir(component, version) / STAMP).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("binaries"), dict) else None


def installed(component: str, version: str, binary: str) -> dict[str, Any] | None:
    """The stamp's entry for ``binary`` when the binary is in place, else None."""
    stamp = read_stamp(component, version)
    entry = (stamp or {}).get("binaries", {}).get(binary)
    if not isinstance(entry, dict):
        return None
    return entry if (component_dir(component, version) / binary).is_file() else None


def locate(binary: str, kubernetes: str | None = None) -> Path:
    """The cached binary for ``binary`` in the pinned release, or ComponentMissing."""
    component = BINARY_COMPONENT[binary]
    rel = release(kubernetes)
    d = component_dir(component, rel.version_of(component))
    path = d / binary
    if installed(component, rel.version_of(component), binary) is None:
        if component == "node-cache" and rel.node_cache_blocked:
            raise ComponentMissing(
                f"{binary} {rel.node_cache} is not in the cache ({path}) and cannot be built "
                f"here (versions.toml marks it blocked): {rel.node_cache_blocked}"
            )
        raise ComponentMissing(
            f"{binary} {rel.version_of(component)} is not in the cache ({path}); "
            "run `conntrack-harness upstream build` (or `make setup`)"
        )
    return path


def components(kubernetes: str | None = None) -> dict[str, dict[str, Any]]:
    """Each pinned part of the release, for result.json's ``environment.components``:
    ``{binary: {component, version, source, origin, sha256}}``; a part not in the cache has
    ``source: None``."""
    rel = release(kubernetes)
    out: dict[str, dict[str, Any]] = {}
    for binary, component in BINARY_COMPONENT.items():
        version = rel.version_of(component)
        entry = installed(component, version, binary) or {}
        out[binary] = {
            "component": component,
            "version": version,
            "source": entry.get("source"),
            "origin": entry.get("origin"),
            "sha256": entry.get("sha256"),
        }
    return out
