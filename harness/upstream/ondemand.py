"""Build a pinned release's parts the first time a run needs them.

A run (and each side of ``compare --run``) names one pinned Kubernetes release. Before the
host lock is taken and before anything on the host changes, :func:`ensure` builds whatever
of that release the backend will start and the cache lacks, with the same progress lines as
``conntrack-harness upstream build`` (the cache's own build lock serialises builders). A part
already in the cache is never rebuilt; a part that cannot be built fails the run as a backend
failure (exit 3), naming it.

Only the netns backend starts the pinned parts itself; kind builds its node image from the
default release on its own, and kubeconfig runs the cluster's parts.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.upstream import Release, release
from harness.upstream import build as builder

# What the netns backend starts: the control plane, kube-proxy in every node, CoreDNS.
# node-cache is not here: without it NodeLocal runs its Corefile on the pinned CoreDNS.
NETNS_BINARIES = frozenset(
    {"etcd", "kube-apiserver", "kube-controller-manager", "kube-proxy", "coredns"}
)
NEEDS = {"netns": NETNS_BINARIES}

Installed = Callable[[str, str, str], bool]


def needed(backend: str) -> frozenset[str]:
    """The pinned binaries ``backend`` starts (none for a backend that brings its own)."""
    return NEEDS.get(backend, frozenset())


def missing_tasks(
    rel: Release, binaries: frozenset[str], is_installed: Installed
) -> list[builder.Task]:
    """What to build so that every one of ``binaries`` of ``rel`` is in the cache (pure)."""
    return builder.plan([rel], set(binaries), is_installed)


def ensure(
    backend: str,
    kubernetes: str | None,
    *,
    say: Callable[[str], None],
    is_installed: Installed | None = None,
    run: Callable[[list[builder.Task]], list[builder.Outcome]] | None = None,
    kube_proxy: str | None = None,
) -> list[builder.Outcome]:
    """Build what ``backend`` needs of release ``kubernetes`` (None: the default) and the
    cache lacks; the outcomes (empty when everything was there). ``kube_proxy``: kube-proxy
    runs from this release instead (alone: nothing else of it is built). Raises BuildFailed
    when a part could not be built."""
    wanted = needed(backend)
    if not wanted:
        return []
    rel = release(kubernetes)
    installed = is_installed or (lambda c, v, b: not builder.missing(c, v, b))
    if kube_proxy is not None and "kube-proxy" in wanted:
        tasks = missing_tasks(rel, wanted - {"kube-proxy"}, installed)
        tasks += missing_tasks(release(kube_proxy), frozenset({"kube-proxy"}), installed)
        who = f"Kubernetes {rel.kubernetes} with kube-proxy {kube_proxy}"
    else:
        tasks = missing_tasks(rel, wanted, installed)
        who = f"Kubernetes {rel.kubernetes}"
    if not tasks:
        return []
    parts = ", ".join(f"{b} {t.version}" for t in tasks for b in t.binaries)
    say(
        f"{who} is used for the first time here: building {parts} "
        "into the cache (once; `conntrack-harness upstream list` shows what is built)"
    )
    outcomes = (run or (lambda ts: builder.run(ts, "auto", say=say)))(tasks)
    builder.check(outcomes)
    return outcomes
