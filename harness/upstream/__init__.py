"""The pinned upstream Kubernetes parts: where each binary lives in the cache.

Only the lookup lives here; building and downloading are in the builder modules. Cache layout
(outside the checkout; ``CONNTRACK_HARNESS_CACHE``, default ``/var/cache/conntrack-harness``)::

    <cache>/upstream/<component>-<version>/<binary>
    <cache>/upstream/<component>-<version>/.complete   # JSON: source, sha256 per binary

Components: ``kubernetes`` (kube-apiserver, kube-controller-manager, kube-proxy, ...),
``etcd``, ``coredns``, ``node-cache``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.errors import MissingTool

VERSIONS_FILE = Path(__file__).with_name("versions.toml")
DEFAULT_CACHE = Path("/var/cache/conntrack-harness")

# which component each binary belongs to
KUBERNETES_BINARIES = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-proxy",
    "kube-scheduler",
    "kubelet",
    "kubeadm",
)
BINARY_COMPONENT = {
    **dict.fromkeys(KUBERNETES_BINARIES, "kubernetes"),
    "etcd": "etcd",
    "coredns": "coredns",
    "node-cache": "node-cache",
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
    node_cache = str(data["node-cache"]["tag"])  # type: ignore[index]
    out = {}
    for ver, parts in data["kubernetes"].items():  # type: ignore[attr-defined]
        out[ver] = Release(ver, str(parts["etcd"]), str(parts["coredns"]), node_cache)
    return out


def release(kubernetes: str | None = None) -> Release:
    """The pinned release ``kubernetes`` (default: the versions file's ``default``)."""
    ver = kubernetes or str(_versions()["default"])
    known = releases()
    if ver not in known:
        from harness.errors import BadInput

        raise BadInput(
            "Kubernetes version is not pinned in harness/upstream/versions.toml",
            field="cluster.kube_proxy.version",
            value=ver,
            allowed=sorted(known),
        )
    return known[ver]


def component_dir(component: str, version: str) -> Path:
    return cache_dir() / f"{component}-{version}"


def locate(binary: str, kubernetes: str | None = None) -> Path:
    """The cached binary for ``binary`` in the pinned release, or ComponentMissing."""
    component = BINARY_COMPONENT[binary]
    rel = release(kubernetes)
    d = component_dir(component, rel.version_of(component))
    path = d / binary
    if not (d / ".complete").is_file() or not path.is_file():
        raise ComponentMissing(
            f"{binary} {rel.version_of(component)} is not in the cache ({path}); "
            "run `conntrack-harness upstream build` (or `make setup`)"
        )
    return path
