"""Backend name -> a :class:`harness.backends.base.Cluster`, plus the refusals each backend
makes before anything is touched (flags it does not take, root, disruptive steps).

The kube backends are imported lazily: they need the ``kube`` extra (the kubernetes client).
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

from cthcommon.errors import BadInput
from harness.backends.base import KUBE_PROXY_RELEASE, KUBERNETES_RELEASE, BackendOptions, Cluster
from harness.backends.stages import Notice
from harness.kernel.journal import Journal
from harness.kernel.sysctl import SysctlGuard
from harness.plan.types import RunPlan

BACKENDS = ("netns", "kind", "kubeconfig")
KUBE_BACKENDS = ("kind", "kubeconfig")

# Backends that are gone, and why: asking for one is bad input with this reason.
REMOVED_BACKENDS = {
    "k3s": (
        "the k3s backend was removed: it cannot be built or pulled here (the Go module proxy "
        "answers 403 Forbidden for github.com/k3s-io/k3s@v1.35.4+k3s1 and no container "
        "registry is reachable for rancher/k3s); use kind or kubeconfig instead"
    ),
}

# Backends whose nodes run on this host's kernel: nf_conntrack_max is global, so shrinking it
# means writing the host's value (root, journaled, restored), and the host lock applies.
HOST_KERNEL_BACKENDS = frozenset({"netns", "kind"})

ROOT_REASONS = {
    "netns": "it builds network namespaces, iptables rules and changes sysctls on this host",
    "kind": (
        "kind nodes are containers on this host's kernel; nf_conntrack_max is global and "
        "writable only in the host's initial namespace, so the harness journals and restores "
        "host sysctls (and reads the host's kernel log for 'table full' lines)"
    ),
}

# flag -> the backends that take it
FLAG_BACKENDS: dict[str, tuple[str, ...]] = {
    "--kubeconfig": ("kubeconfig",),
    "--allow-disruptive": ("kubeconfig",),
    "--keep-cluster": ("kind",),
    "--loadgen-image": KUBE_BACKENDS,
    "--image": ("kubeconfig",),
    "--pcap": ("netns", "kind"),
    "--kubernetes": ("netns",),
    "--parts kube-proxy": ("netns",),
}


def root_reason(backend: str) -> str | None:
    """Why this backend needs root on this host (None: it changes nothing here)."""
    return ROOT_REASONS.get(backend)


def _flags_given(options: BackendOptions) -> list[str]:
    given = []
    if options.kubeconfig is not None:
        given.append("--kubeconfig")
    if options.allow_disruptive:
        given.append("--allow-disruptive")
    if options.keep_cluster:
        given.append("--keep-cluster")
    if options.loadgen_image is not None:
        given.append("--loadgen-image")
    if options.capture_pcap:
        given.append("--pcap")
    if options.images:
        given.append("--image")
    if options.extra.get(KUBERNETES_RELEASE):
        given.append("--kubernetes")
    if options.extra.get(KUBE_PROXY_RELEASE):
        given.append("--parts kube-proxy")
    return given


# --image ROLE=REF: the images an existing cluster's nodes pull, by role (the HTTP server,
# NodeLocal DNSCache, or a CoreDNS image run as node-cache's labelled stand-in)
IMAGE_ROLES = ("http-server", "node-cache", "node-cache-stand-in")


def image_overrides(values: list[str]) -> dict[str, str]:
    """``--image ROLE=REF`` (repeatable) -> {role: ref}; bad input names the roles."""
    out: dict[str, str] = {}
    for value in values:
        role, eq, ref = value.partition("=")
        if not eq or not ref or any(c.isspace() for c in value):
            raise BadInput(
                "give --image as ROLE=REF, e.g. http-server=registry.example/nginx:1.27",
                field="--image",
                value=value,
                allowed=sorted(IMAGE_ROLES),
            )
        if role not in IMAGE_ROLES:
            raise BadInput(
                "unknown image role", field="--image", value=role, allowed=sorted(IMAGE_ROLES)
            )
        if role in out and out[role] != ref:
            raise BadInput(f"--image {role} given twice", field="--image", value=value)
        out[role] = ref
    if "node-cache" in out and "node-cache-stand-in" in out:
        raise BadInput(
            "give node-cache or node-cache-stand-in, not both",
            field="--image",
            value=",".join(values),
        )
    return out


def loadgen_images(repo: str) -> tuple[str, str]:
    """``--loadgen-image REPO`` -> (REPO:glibc, REPO:musl), the two images' tags."""
    last = repo.rsplit("/", 1)[-1]
    if not repo or not last or ":" in last or "@" in last or any(c.isspace() for c in repo):
        raise BadInput(
            "give the image repository without a tag; the harness uses REPO:glibc and REPO:musl",
            field="--loadgen-image",
            value=repo,
        )
    return f"{repo}:glibc", f"{repo}:musl"


def check_options(backend: str, options: BackendOptions) -> None:
    """Refusals that need nothing but the backend's name and the flags: run before any host
    or cluster change (the scenario's own fields are judged by
    :func:`harness.backendcheck.check_backend`, which runs this first)."""
    if backend in REMOVED_BACKENDS:
        raise BadInput(REMOVED_BACKENDS[backend], field="--backend")
    if backend not in BACKENDS:
        raise BadInput("unknown backend", field="--backend", value=backend, allowed=list(BACKENDS))
    for flag in _flags_given(options):
        allowed = FLAG_BACKENDS[flag]
        if backend not in allowed:
            raise BadInput(
                f"{flag} only applies to --backend {'/'.join(allowed)}",
                field=flag,
                value=backend,
                allowed=list(allowed),
            )
    if options.loadgen_image is not None:
        loadgen_images(options.loadgen_image)


def check_plan(backend: str, plan: RunPlan, options: BackendOptions) -> None:
    """What a backend refuses of the run's plan, before anything is touched: an existing
    cluster needs images it can pull, and changes beyond the run's namespace only with
    ``--allow-disruptive``."""
    if backend == "kubeconfig":
        if options.loadgen_image is None:
            raise BadInput(
                "an existing cluster must pull the loadgen images from a registry: build "
                "loadgen/docker/Dockerfile.{glibc,musl}, push them as REPO:glibc and REPO:musl, "
                "and pass --loadgen-image REPO",
                field="--loadgen-image",
            )
        from harness.backends.kube.kubeconfig import check_allowed

        check_allowed(plan, allow_disruptive=options.allow_disruptive)


def check_backend_ready(
    backend: str,
    options: BackendOptions,
    notice: Notice | None = None,
    plan: RunPlan | None = None,
) -> None:
    """Checks that need no lock and change no host: the backend's tools are on PATH, which
    Docker and node image kind uses (``CTH_KIND_DOCKER``; said through ``notice``, kept in
    ``options.extra`` for :func:`make_cluster`), the kubeconfig's API server answers. Run
    before the host lock is waited on and before any host change, so a run never changes
    the host and then finds its backend missing. The first use of a pinned release (netns)
    builds what the run needs of it into the cache here, with progress on stderr (the cache
    has its own build lock)."""
    if plan is not None:
        from harness.upstream.ondemand import ensure

        release = options.extra.get(KUBERNETES_RELEASE) or plan.kube_proxy.version
        kube_proxy = options.extra.get(KUBE_PROXY_RELEASE)
        ensure(backend, str(release), say=_say_upstream, kube_proxy=kube_proxy)
    if backend == "kind":
        from harness.backends.kube.kind import preflight as kind_preflight
        from harness.kindbuild.kinddocker import EXTRA_KEY

        options.extra[EXTRA_KEY] = kind_preflight(notice=notice).to_json()
    elif backend == "kubeconfig":
        from harness.backends.kube.kubeconfig import preflight as kubeconfig_preflight

        kubeconfig_preflight(options.kubeconfig)


def check_inputs(backend: str, plan: RunPlan, options: BackendOptions) -> None:
    """Inputs only the backend's own parts can judge, checked before the host lock is waited
    on and before any host change: on netns, the pinned CoreDNS parses the scenario's own
    Corefile (in a throwaway namespace that goes with it; exit 2 quoting CoreDNS)."""
    if backend == "netns" and plan.cluster.corefile is not None:
        from harness.backends.netns.k8s.corefilecheck import check_plan as check_corefile

        check_corefile(plan, options.extra.get(KUBERNETES_RELEASE))


def _say_upstream(line: str) -> None:
    print(f"upstream: {line}", file=sys.stderr, flush=True)


def changes_host(backend: str, plan: RunPlan, options: BackendOptions) -> bool:
    """Does this run change this host, and so need the host lock?

    netns builds namespaces here; kind starts node containers on this host's kernel.
    kubeconfig changes only its cluster, unless --allow-disruptive lets it set the nodes'
    global conntrack sysctls: a cluster whose nodes run on this host (a local kind) would then
    change this host's kernel, so that run takes the lock too."""
    if backend in HOST_KERNEL_BACKENDS:
        return True
    if backend != "kubeconfig" or not options.allow_disruptive:
        return False
    from harness.backends.kube.hostsysctl import needs_host

    return needs_host(plan)


def project_dir() -> Path:
    """Where loadgen/docker/ is (the images' build context): the source tree, else the cwd."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "loadgen" / "docker").is_dir() else Path.cwd()


def make_cluster(
    backend: str,
    plan: RunPlan,
    *,
    run_id: str,
    journal: Journal,
    guard: SysctlGuard,
    options: BackendOptions,
    notice: Notice | None = None,
) -> Cluster:
    """The backend's cluster for the run's plan (made once by the runner); ``notice`` hears
    its setup steps (the kube backends')."""
    check_options(backend, options)
    check_plan(backend, plan, options)
    if backend == "netns":
        from harness.backends.netns.cluster import NetnsCluster

        return NetnsCluster(
            plan,
            run_id,
            journal,
            guard,
            capture_pcap=options.capture_pcap,
            kubernetes=options.extra.get(KUBERNETES_RELEASE),
            kube_proxy_release=options.extra.get(KUBE_PROXY_RELEASE),
            notice=notice,
        )
    return _make_kube(
        backend, plan, run_id=run_id, journal=journal, guard=guard, options=options, notice=notice
    )


def _make_kube(
    backend: str,
    plan: RunPlan,
    *,
    run_id: str,
    journal: Journal,
    guard: SysctlGuard,
    options: BackendOptions,
    notice: Notice | None = None,
) -> Cluster:
    from harness.backends.kube.cluster import Images
    from harness.backends.kube.runcluster import KubeRunCluster, host_kernel_log

    images = Images(*loadgen_images(options.loadgen_image)) if options.loadgen_image else None
    build = images is None  # given images are used as they are: never rebuilt over
    if backend == "kind":
        from harness.backends.kube.kind import KindBackend, KindSettings
        from harness.kindbuild import kinddocker

        decided = options.extra.get(kinddocker.EXTRA_KEY)
        choice = kinddocker.Choice.from_json(decided) if decided else kinddocker.choose(os.environ)
        kind = KindSettings.from_env(
            os.environ, choice, project_dir=project_dir(), build_images=build
        )
        kind.keep_cluster = kind.keep_cluster or options.keep_cluster
        if images is not None:
            kind.images = images
        return KubeRunCluster(
            KindBackend(kind, guard=guard, notice=notice),
            plan,
            run_id,
            kernel_log=host_kernel_log,
            guard=guard,  # the aged warm-up sets the kind nodes' timeouts through it
            journal=journal,
            capture_pcap=options.capture_pcap,
        )
    from harness.backends.kube.kubeconfig import KubeconfigBackend, KubeconfigSettings

    assert images is not None  # check_plan refused a kubeconfig run without images
    given = options.images
    settings = KubeconfigSettings(
        images=dataclasses.replace(
            images,
            http_server=given.get("http-server", images.http_server),
            nodelocal=given.get("node-cache", images.nodelocal),
            nodelocal_stand_in=given.get("node-cache-stand-in"),
        ),
        kubeconfig=options.kubeconfig,
        allow_disruptive=options.allow_disruptive,
    )
    return KubeRunCluster(KubeconfigBackend(settings, notice=notice), plan, run_id)
