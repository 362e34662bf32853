"""The kind CLI and the CNI plugins of its node image, built from the Go module proxy.

Both are pinned in ``versions.toml`` (``[kind]``) and installed with ``go install pkg@version``
(``nice -n 19``, static, ``-trimpath``) into the upstream cache::

    <cache>/upstream/kind-<version>/kind
    <cache>/upstream/cni-plugins-<version>/{ptp,host-local,loopback,portmap}
    <cache>/upstream/crictl-<version>/crictl

each with the ``.complete`` marker (JSON: source, sha256 per binary) that :func:`locate` reads.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path

from cthcommon.errors import BackendError, MissingTool
from harness.upstream import VERSIONS_FILE, ComponentMissing, component_dir

KIND_MODULE = "sigs.k8s.io/kind"
CNI_MODULE = "github.com/containernetworking/plugins"
CRICTL_PACKAGE = "sigs.k8s.io/cri-tools/cmd/crictl"
CNI_PLUGINS = {
    "ptp": "plugins/main/ptp",
    "host-local": "plugins/ipam/host-local",
    "loopback": "plugins/main/loopback",
    "portmap": "plugins/meta/portmap",
}


def pinned() -> dict[str, str]:
    """``{"kind": ..., "cni-plugins": ..., "crictl": ...}`` from versions.toml."""
    with VERSIONS_FILE.open("rb") as f:
        data = tomllib.load(f)
    kind = data.get("kind", {})
    return {
        "kind": str(kind["version"]),
        "cni-plugins": str(kind["cni-plugins"]),
        "crictl": str(kind["crictl"]),
    }


def _packages(component: str, version: str) -> dict[str, str]:
    if component == "kind":
        return {"kind": f"{KIND_MODULE}@{version}"}
    if component == "crictl":
        return {"crictl": f"{CRICTL_PACKAGE}@{version}"}
    return {b: f"{CNI_MODULE}/{p}@{version}" for b, p in CNI_PLUGINS.items()}


def locate(component: str) -> Path:
    """The built component's directory, or ComponentMissing."""
    version = pinned()[component]
    d = component_dir(component, version)
    missing = [b for b in _packages(component, version) if not (d / b).is_file()]
    if not (d / ".complete").is_file() or missing:
        raise ComponentMissing(
            f"{component} {version} is not in the cache ({d}); "
            "run `python -m harness.upstream.kindparts`"
        )
    return d


def build(component: str) -> Path:
    """``go install`` the component's binaries into the cache (once)."""
    try:
        return locate(component)
    except ComponentMissing:
        pass
    if shutil.which("go") is None:
        raise MissingTool("go is not on PATH", tool="go")
    version = pinned()[component]
    pkgs = _packages(component, version)
    d = component_dir(component, version)
    tmp = d.with_name(d.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    env = {**os.environ, "GOBIN": str(tmp), "CGO_ENABLED": "0", "GOFLAGS": "-trimpath"}
    p = subprocess.run(
        ["nice", "-n", "19", "go", "install", *pkgs.values()],
        capture_output=True,
        text=True,
        env=env,
        cwd="/",
        check=False,
        timeout=3600,
    )
    if p.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BackendError(f"go install {' '.join(pkgs.values())} failed: {p.stderr[-1500:]}")
    sums = {b: hashlib.sha256((tmp / b).read_bytes()).hexdigest() for b in pkgs}
    (tmp / ".complete").write_text(json.dumps({"source": sorted(pkgs.values()), "sha256": sums}))
    shutil.rmtree(d, ignore_errors=True)
    tmp.rename(d)
    return d


def kind_binary() -> Path:
    return build("kind") / "kind"


if __name__ == "__main__":
    for name in ("kind", "cni-plugins", "crictl"):
        print(build(name))
