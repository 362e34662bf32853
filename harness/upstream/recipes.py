"""How each pinned component is built from source: the wrapper Go module, the packages, the
version stamp. Pure: the builder (:mod:`harness.upstream.gobuild`) runs what this describes.

Why a wrapper module: ``go install MODULE@VERSION`` refuses a module whose go.mod has
``replace`` directives, and replace directives only apply in the main module. Kubernetes
replaces its staging modules (``k8s.io/api => ./staging/src/k8s.io/api``, required at
``v0.0.0``); etcd's server module replaces its sibling modules (``=> ../api``). The wrapper
requires the component and replaces each local path with the published module at the matching
version (Kubernetes v1.Y.Z publishes its staging modules as v0.Y.Z; etcd publishes every
module at the same tag). Replacements that name another module are copied as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

WRAPPER_MODULE = "conntrack-harness.local/upstream-build"

_RELEASE = re.compile(r"^v1\.(\d+)\.(\d+)(-[0-9A-Za-z.-]+)?$")
_SEMVER = re.compile(r"^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")


@dataclass(frozen=True)
class Replace:
    """One ``replace`` line of a go.mod: ``old [old_version] => new [new_version]``."""

    old: str
    new: str
    old_version: str = ""
    new_version: str = ""

    @property
    def local(self) -> bool:
        """The target is a directory (``./x``, ``../x``, ``/x``), not a module."""
        return self.new.startswith(("./", "../", "/")) or self.new in (".", "..")


@dataclass(frozen=True)
class GoModInfo:
    """What the builder needs from an upstream go.mod."""

    module: str
    go: str
    replaces: tuple[Replace, ...]


@dataclass(frozen=True)
class Recipe:
    """One component build: a wrapper module and a package per binary."""

    component: str
    version: str
    module: str  # the upstream module the wrapper requires
    module_version: str  # its version in the module proxy (a pseudo-version for node-cache)
    packages: dict[str, str]  # binary -> Go package
    go_mod: str  # the wrapper's go.mod
    ldflags: dict[str, str] = field(default_factory=dict)  # binary -> -ldflags

    def tools_go(self, binaries: Iterable[str] | None = None) -> str:
        """A file importing the packages of ``binaries`` (default all), so that ``go mod tidy``
        records their dependencies."""
        names = self.packages if binaries is None else binaries
        imports = "\n".join(f'\t_ "{p}"' for p in sorted({self.packages[b] for b in names}))
        return f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n"


def _strip_comment(line: str) -> str:
    i = line.find("//")
    return (line[:i] if i >= 0 else line).strip()


def _unquote(tok: str) -> str:
    return tok[1:-1] if len(tok) >= 2 and tok[0] == tok[-1] and tok[0] in '"`' else tok


def parse_go_mod(text: str) -> GoModInfo:
    """The module path, go directive and replace directives of a go.mod."""
    module = go = ""
    replaces: list[Replace] = []
    block = ""
    for raw in text.splitlines():
        line = _strip_comment(raw)
        if not line:
            continue
        if block:
            if line == ")":
                block = ""
            elif block == "replace":
                replaces.append(_replace(line))
            continue
        head, _, rest = line.partition(" ")
        rest = rest.strip()
        if rest == "(":
            block = head
        elif head == "module":
            module = _unquote(rest)
        elif head == "go":
            go = rest
        elif head == "replace":
            replaces.append(_replace(rest))
    if not module:
        raise ValueError("go.mod has no module directive")
    return GoModInfo(module, go, tuple(replaces))


def _replace(spec: str) -> Replace:
    left, sep, right = spec.partition("=>")
    if not sep:
        raise ValueError(f"replace directive without '=>': {spec!r}")
    lt = [_unquote(t) for t in left.split()]
    rt = [_unquote(t) for t in right.split()]
    if not 1 <= len(lt) <= 2 or not 1 <= len(rt) <= 2:
        raise ValueError(f"malformed replace directive: {spec!r}")
    return Replace(lt[0], rt[0], lt[1] if len(lt) == 2 else "", rt[1] if len(rt) == 2 else "")


def staging_version(kubernetes: str) -> str:
    """The version Kubernetes ``v1.Y.Z`` publishes its staging modules at: ``v0.Y.Z``."""
    m = _RELEASE.match(kubernetes)
    if not m:
        raise ValueError(f"not a Kubernetes v1.Y.Z release: {kubernetes!r}")
    return f"v0.{m.group(1)}.{m.group(2)}{m.group(3) or ''}"


def wrapper_go_mod(
    upstream: GoModInfo, version: str, local_version: str, extra_requires: dict[str, str]
) -> str:
    """A go.mod requiring ``upstream.module@version``; each local replace becomes the published
    module at ``local_version``, every other replace is kept."""
    lines = [f"module {WRAPPER_MODULE}", ""]
    if upstream.go:
        lines += [f"go {upstream.go}", ""]
    requires = {upstream.module: version, **extra_requires}
    lines.append("require (")
    lines += [f"\t{m} {v}" for m, v in sorted(requires.items())]
    lines += [")", ""]
    reps = []
    for r in upstream.replaces:
        old = f"{r.old} {r.old_version}".strip()
        if r.local:
            reps.append(f"\t{old} => {r.old} {local_version}")
        else:
            reps.append(f"\t{old} => {f'{r.new} {r.new_version}'.strip()}")
    if reps:
        lines += ["replace (", *reps, ")", ""]
    return "\n".join(lines)


def kubernetes_ldflags(version: str) -> str:
    """The version stamp ``kube-* --version`` prints (as the release build sets it)."""
    m = _RELEASE.match(version)
    if not m:
        raise ValueError(f"not a Kubernetes v1.Y.Z release: {version!r}")
    minor = m.group(1)
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor=1",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return " ".join(flags)


def kubernetes(version: str, upstream_go_mod: str, binaries: tuple[str, ...]) -> Recipe:
    """kube-apiserver, kube-proxy, ... from ``k8s.io/kubernetes@version``."""
    info = parse_go_mod(upstream_go_mod)
    staging = staging_version(version)
    ld = kubernetes_ldflags(version)
    return Recipe(
        component="kubernetes",
        version=version,
        module=info.module,
        module_version=version,
        packages={b: f"{info.module}/cmd/{b}" for b in binaries},
        go_mod=wrapper_go_mod(info, version, staging, {}),
        ldflags=dict.fromkeys(binaries, ld),
    )


def etcd(version: str, server_go_mod: str) -> Recipe:
    """The etcd binary: the main package is the server module's root (go.etcd.io/etcd/server/v3);
    its sibling modules are required at the same tag."""
    info = parse_go_mod(server_go_mod)
    siblings = {r.old: version for r in info.replaces if r.local and "FORBIDDEN" not in r.new}
    upstream = GoModInfo(info.module, info.go, tuple(r for r in info.replaces if not r.local))
    return Recipe(
        component="etcd",
        version=version,
        module=info.module,
        module_version=version,
        packages={"etcd": info.module},
        go_mod=wrapper_go_mod(upstream, version, version, siblings),
        ldflags={"etcd": "-s -w"},
    )


def coredns(version: str, upstream_go_mod: str) -> Recipe:
    """CoreDNS with its default plugin set (the release binary's)."""
    info = parse_go_mod(upstream_go_mod)
    return Recipe(
        component="coredns",
        version=version,
        module=info.module,
        module_version=version,
        packages={"coredns": info.module},
        go_mod=wrapper_go_mod(info, version, version, {}),
        ldflags={"coredns": "-s -w"},
    )


def node_cache(tag: str, module_version: str, upstream_go_mod: str) -> Recipe:
    """node-cache from k8s.io/dns, whose tags (``1.26.4``) are not semver: the proxy serves the
    tagged commit as ``module_version``, a pseudo-version."""
    info = parse_go_mod(upstream_go_mod)
    if not _SEMVER.match(module_version):
        raise ValueError(f"not a module version: {module_version!r}")
    return Recipe(
        component="node-cache",
        version=tag,
        module=info.module,
        module_version=module_version,
        packages={"node-cache": f"{info.module}/cmd/node-cache"},
        go_mod=wrapper_go_mod(info, module_version, module_version, {}),
        ldflags={"node-cache": f"-s -w -X {info.module}/pkg/version.VERSION={tag}"},
    )


# component -> the module its main package lives in
MODULES = {
    "kubernetes": "k8s.io/kubernetes",
    "etcd": "go.etcd.io/etcd/server/v3",
    "coredns": "github.com/coredns/coredns",
    "node-cache": "k8s.io/dns",
}


def for_component(
    component: str,
    version: str,
    module_version: str,
    upstream_go_mod: str,
    binaries: tuple[str, ...],
) -> Recipe:
    """The recipe for ``component``, given the go.mod of ``MODULES[component]@module_version``."""
    if component == "kubernetes":
        return kubernetes(version, upstream_go_mod, binaries)
    if component == "etcd":
        return etcd(version, upstream_go_mod)
    if component == "coredns":
        return coredns(version, upstream_go_mod)
    if component == "node-cache":
        return node_cache(version, module_version, upstream_go_mod)
    raise ValueError(f"unknown component {component!r}")
