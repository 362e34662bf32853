"""``--harness-backend kind``: a real cluster from the kind CLI, created (or reused) per run.

Its nodes are Docker containers on this host's kernel. :meth:`KindBackend.realize` does, in
this order:

1. refuse a host sysctl change without root, before anything is created;
2. start the cluster (undone on every exit path unless kept), wait for its nodes and CoreDNS;
3. build (unless images were given) and load the loadgen images;
4. map the scenario's nodes, take the host guard if the scenario changes host sysctls;
5. realize the shared workload (:mod:`.cluster`).

The images and the Docker daemon they go to come from :mod:`.images`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cthcommon.errors import BackendError, BadInput, CommandFailed, MissingTool
from harness import __version__
from harness.backends.kube import commands, kindconfig, nodelocaldns, readiness, up
from harness.backends.kube.cluster import (
    API_POLL_S,
    WORKLOAD_STAGE,
    Images,
    KubeCluster,
    Settings,
    realize_workload,
)
from harness.backends.kube.components import Components, image_version, unread
from harness.backends.kube.hostsysctl import (
    GuardedHostSysctls,
    HostSysctls,
    SysctlSetter,
    needs_host,
    require_root,
)
from harness.backends.kube.names import (
    COREDNS_DEPLOYMENT,
    LOADGEN_IMAGE_GLIBC,
    LOADGEN_IMAGE_MUSL,
    SYSTEM_NAMESPACE,
    check_run_id,
)
from harness.backends.kube.nodeaccess import DockerNodeAccess
from harness.backends.kube.placement import NodeMap, map_by_label
from harness.backends.kube.proc import Runner, environ_set, kubectl_dir, subprocess_runner
from harness.backends.stages import Notice, Stages
from harness.kernel.journal import Journal
from harness.kernel.sysctl import SysctlGuard
from harness.kindbuild import (
    dockerd,
    kindbase,
    kinddocker,
    kindimages,
    kindnode,
    loadgenimage,
)
from harness.kubeapi.client import KubeAPI
from harness.kubeapi.kubeconfig import client_for
from harness.kubeapi.wait import wait_for
from harness.plan.types import RunPlan
from harness.upstream import ComponentMissing, component_dir, kindparts, locate, release

__all__ = ["DOCKERFILES", "KindBackend", "KindSettings", "preflight"]

NODE_IMAGE_BUILT = "built"
NODE_IMAGE_REUSED = "reused"
# in a kept cluster's control-plane node: kindconfig.fingerprint of what it was made for
FINGERPRINT_FILE = "/kind/conntrack-harness-fingerprint"
NODE_IMAGE_SYSTEM = "system"
KIND_CLUSTER_OP = "kind-cluster"  # journal op: a cluster on the system Docker, for `restore`
DOCKERFILES = {"glibc": "loadgen/docker/Dockerfile.glibc", "musl": "loadgen/docker/Dockerfile.musl"}


@dataclass
class KindSettings:
    images: Images = field(default_factory=lambda: Images(LOADGEN_IMAGE_GLIBC, LOADGEN_IMAGE_MUSL))
    build_images: bool = True  # build loadgen/docker/ (False: the images were given)
    project_dir: Path = Path(".")
    timeout_s: float = 600.0
    cluster_name: str | None = None  # reuse this cluster if it exists; default cth-<run id>
    keep_cluster: bool = False
    up: bool = False  # the cluster is the one `conntrack-harness up` keeps (its record)
    config: kindconfig.KindOptions = field(default_factory=kindconfig.KindOptions)
    # True: this project's own dockerd and node image, built here with nothing pulled
    # (air-gapped). False: the Docker daemon that answers (DOCKER_HOST or the default socket)
    # and its node image (kindest/node for the pinned release, or CTH_KIND_NODE_IMAGE).
    # Either way the loadgen and HTTP server images are built here into that daemon.
    private_docker: bool = True
    # the preflight's decision and its reasons (kinddocker.choose), said in components
    choice: kinddocker.Choice | None = None

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        choice: kinddocker.Choice | None = None,
        **overrides: Any,
    ) -> KindSettings:
        """Settings from ``CTH_KIND_NODE_IMAGE``, ``CTH_KIND_CLUSTER``, ``CTH_KIND_KEEP`` and
        ``CTH_KIND_DOCKER`` (its decision: ``choice``, made by :func:`preflight`; without
        one, ``auto`` is taken as the private dockerd), then overrides (CLI flags) on top.
        On the daemon that answered, without ``CTH_KIND_CLUSTER``, the cluster ``up`` keeps
        there is the run's, kept (:mod:`.up`)."""
        keep = environ.get("CTH_KIND_KEEP", "").lower()
        if keep not in ("", "0", "1", "true", "false"):
            raise BadInput("must be 0/1/true/false", field="CTH_KIND_KEEP", value=keep)
        want = kinddocker.mode(environ)
        node_image = environ.get(kinddocker.NODE_IMAGE_ENV) or None
        if choice is not None:
            node_image = choice.node_image
        # the cluster `conntrack-harness up` keeps on this daemon: reused and kept
        up_name = (
            up.cluster_for_run(environ, kinddocker.daemon_address(environ))
            if choice is not None and choice.system
            else None
        )
        base: dict[str, Any] = {
            "cluster_name": up_name or environ.get("CTH_KIND_CLUSTER") or None,
            "keep_cluster": up_name is not None or keep in ("1", "true"),
            "up": up_name is not None,
            "private_docker": not choice.system if choice else want != "system",
            "choice": choice,
            "config": kindconfig.KindOptions(node_image=node_image),
        }
        base.update(overrides)
        return cls(**base)


PRIVATE_TOOLS = (dockerd.DOCKERD, dockerd.DOCKER, dockerd.RUNC, "iptables-save", "debootstrap")
GO_FALLBACK = "/usr/local/go/bin/go"


def _have_go() -> bool:
    return shutil.which("go") is not None or os.access(GO_FALLBACK, os.X_OK)


def preflight(
    runner: Runner = subprocess_runner,
    environ: Mapping[str, str] = os.environ,
    notice: Notice | None = None,
) -> kinddocker.Choice:
    """Before the host lock and any change: decide which Docker and node image the run uses
    (:func:`kinddocker.choose`; says which and why), then check that path's tools. Private
    Docker: dockerd, docker, runc, debootstrap and go (the daemon is started by the run).
    System Docker: a kind CLI (on PATH, or the pinned one built here, which needs go)."""
    stages = Stages(notice, "kind")
    choice = kinddocker.choose(environ, runner, say=stages.say)
    for line in choice.lines():
        stages.say(line)
    if not choice.system:
        for tool in (*PRIVATE_TOOLS, "go"):
            if shutil.which(tool) is None and not (tool == "go" and _have_go()):
                raise MissingTool(
                    f"--backend kind needs {tool} (apt-get install docker.io debootstrap; Go for "
                    "the upstream builds), or a Docker daemon that answers with "
                    f"{kinddocker.pinned_node_image()} (CTH_KIND_DOCKER=system)",
                    tool=tool,
                )
        return choice
    if shutil.which(commands.KIND) is None and not _pinned_kind_available():
        raise MissingTool(
            "--backend kind on the system Docker needs the kind CLI: on PATH, or go to build "
            f"the pinned kind {kindparts.pinned()['kind']}",
            tool=commands.KIND,
        )
    return choice


def _pinned_kind_available() -> bool:
    try:
        kindparts.locate("kind")
    except ComponentMissing:
        return _have_go()
    return True


@dataclass(frozen=True)
class SystemDocker:
    """The Docker daemon the environment names (DOCKER_HOST or the default socket), through
    the docker CLI on PATH: what the image builders need of a daemon."""

    runner: Runner

    def cli(self, *args: str, timeout_s: float = 120) -> str:
        return self.runner([commands.DOCKER, *args], timeout_s=timeout_s).stdout


@dataclass
class Started:
    """A started cluster: its kubeconfig (each node is the container of the same name)."""

    kubeconfig: str


class KindBackend:
    name = "kind"

    _cluster = ""  # set by start()
    _docker: dockerd.Dockerd | None = None  # the private dockerd, set by start()
    _plan: RunPlan | None = None  # the run's plan, set by start()
    _images_docker: dockerd.DockerCli | None = None  # the daemon the images go to, ditto
    _node_image_source: str | None = None  # NODE_IMAGE_BUILT/REUSED/SYSTEM, set by start()
    _kind_built = False  # the pinned kind CLI built here (not the one on PATH)
    _reused = "as found"  # how a reused cluster came to be there, set by start()

    def __init__(
        self,
        settings: KindSettings | None = None,
        *,
        runner: Runner = subprocess_runner,
        api_factory: Callable[[str], KubeAPI] = client_for,
        guard: SysctlSetter | None = None,
        host_factory: Callable[[], HostSysctls] | None = None,
        euid: Callable[[], int] = os.geteuid,
        notice: Notice | None = None,
    ) -> None:
        """``notice`` hears each setup step as it starts and ends (see :mod:`..stages`)."""
        self.settings = settings or KindSettings()
        self.stages = Stages(notice, self.name)
        self._run = runner
        self._api_factory = api_factory
        self._guard = guard
        self._host_factory = host_factory
        self._euid = euid

    def _host(self) -> HostSysctls:
        """The runner's journaled guard; tests pass their own ``host_factory``."""
        if self._host_factory is not None:
            return self._host_factory()
        if self._guard is None:
            raise BackendError(
                "this scenario changes host sysctls, but the backend was given no sysctl guard "
                "(build it with harness.backends.registry.make_cluster)"
            )
        return GuardedHostSysctls(self._guard, euid=self._euid)

    def _build_from_dockerfiles(self) -> None:
        """Both flavours from loadgen/docker/'s Dockerfiles, then ``kind load``."""
        for flavour, tag in (
            ("glibc", self.settings.images.glibc),
            ("musl", self.settings.images.musl),
        ):
            if self.settings.build_images:
                project = self.settings.project_dir
                dockerfile = str(project / DOCKERFILES[flavour])
                with self.stages.stage(f"docker build {tag}"):
                    self._run(commands.docker_build(dockerfile, tag, str(project)))
            self.load_image(tag)

    @contextmanager
    def realize(self, plan: RunPlan, run_id: str) -> Iterator[KubeCluster]:
        if needs_host(plan):  # refuse before anything is created
            require_root(self._euid(), "shrinking nf_conntrack_max for a kind cluster")
        timeout_s = self.settings.timeout_s
        st = self.stages
        t0 = st.clock()
        with ExitStack() as stack:
            down = st.teardown(stack)
            try:
                prefix = f"cth-{self.name}-"
                workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
                started = self.start(stack, plan, run_id, workdir)
                api = self._api_factory(started.kubeconfig)
                want = self.expected_nodes(plan)
                with st.stage(f"waiting for {want} nodes Ready"):
                    wait_for(
                        f"{self.name} nodes Ready",
                        lambda: readiness.nodes_not_ready(api.list("v1", "Node"), want),
                        timeout_s=timeout_s,
                        interval_s=API_POLL_S,
                    )
                with st.stage("waiting for CoreDNS Ready"):
                    wait_for(
                        "CoreDNS Ready",
                        lambda: readiness.deployment_not_ready(
                            api.get("apps/v1", "Deployment", COREDNS_DEPLOYMENT, SYSTEM_NAMESPACE)
                        ),
                        timeout_s=timeout_s,
                        interval_s=API_POLL_S,
                    )
                self.build_and_load_images()
                nodes = self.map_nodes(plan, api.list("v1", "Node"))
                s = Settings(
                    backend=self.name,
                    run_id=run_id,
                    plan=plan,
                    api=api,
                    runner=self._run,
                    kubeconfig=started.kubeconfig,
                    images=self.settings.images,
                    access=DockerNodeAccess(self._run),
                    host=self._host() if needs_host(plan) else None,
                    timeout_s=timeout_s,
                    # not waited for, deleted or kept: by then everything in it that touched
                    # a node (the tuners, NodeLocal, the client pods) is gone, each waited
                    # for; what is left (the HTTP server, the namespace) holds nothing of a
                    # node, and a next run on a kept cluster has a namespace of its own. The
                    # wait was 6 s before a delete, 8-17 s on a kept cluster.
                    wait_namespace_gone=False,
                )
                with st.stage(WORKLOAD_STAGE):
                    cluster = stack.enter_context(realize_workload(s, nodes))
                st.say(f"cluster ready ({st.clock() - t0:.1f}s in all)")
                yield cluster
            except BaseException as e:
                down.begin(e)
                raise
            finally:
                down.begin()

    def cluster_name(self, run_id: str) -> str:
        return self.settings.cluster_name or f"cth-{check_run_id(run_id)}"

    def existing_clusters(self) -> list[str]:
        return self._run(commands.kind_get_clusters()).stdout.split()

    def _journal(self, stack: ExitStack, run_id: str) -> Journal:
        """The run's journal (the guard's), so `restore` can stop a dockerd a killed run left."""
        if isinstance(self._guard, SysctlGuard):
            return self._guard.journal
        j = Journal.create(f"kind-{run_id}")
        stack.callback(j.close)
        return j

    def _private_docker(self, stack: ExitStack, run_id: str) -> dockerd.Dockerd:
        """Start this project's dockerd, put the pinned kind and kubectl first on PATH, and
        build the node image unless one was named."""
        st = self.stages
        with st.stage("starting the private dockerd"):
            docker = stack.enter_context(dockerd.running(self._journal(stack, run_id)))
        with st.stage(f"kind {kindparts.pinned()['kind']} CLI (pinned, built here)"):
            tools = [kindparts.build("kind"), locate("kubectl").parent]
        self._kind_built = True
        # dockerd.running restores PATH (and DOCKER_HOST) when it ends
        os.environ["PATH"] = ":".join([*map(str, tools), os.environ.get("PATH", "")])
        if self.settings.config.node_image is None:
            with st.stage("node image from the pinned upstream binaries") as stage:
                notes: list[str] = []
                image = kindnode.build(docker, log=notes)
                stage.result = notes[-1].removeprefix("node image ") if notes else image
            self.settings.config = dataclasses.replace(self.settings.config, node_image=image)
            self._node_image_source = NODE_IMAGE_BUILT
        return docker

    def _system_docker(self, stack: ExitStack) -> SystemDocker:
        """The Docker daemon that answered: no dockerd is started, no node image built. The
        kind CLI is the one on PATH, else the pinned one (built here once); kubectl likewise.
        The host-global knobs a node may write are journaled and put back at the end, as
        the private path does."""
        tools: list[Path] = []
        if self.settings.choice is None:  # not preflighted (a fake's run): the tools as given
            return SystemDocker(self._run)
        if shutil.which(commands.KIND) is None:
            with self.stages.stage(f"kind {kindparts.pinned()['kind']} CLI (pinned, built here)"):
                tools.append(kindparts.build("kind"))
            self._kind_built = True
        if (kubectl := kubectl_dir()) is not None:
            tools.append(kubectl)
        if tools:
            saved = os.environ.get("PATH", "")
            os.environ["PATH"] = ":".join([*map(str, tools), saved])
            stack.callback(os.environ.__setitem__, "PATH", saved)
        if isinstance(self._guard, SysctlGuard):  # a real run (make_cluster), not a fake
            stack.enter_context(dockerd.sysctls_kept(self._guard.journal))
        if self.settings.config.node_image is not None:
            self._node_image_source = NODE_IMAGE_SYSTEM
        return SystemDocker(self._run)

    def build_and_load_images(self) -> None:
        """The images the scenario's phases use, built here into the daemon the run uses
        (the private dockerd or the system's; skipped when that daemon has them with the same
        inputs) and loaded into the nodes with ``kind load``: the glibc loadgen image (the
        Dockerfiles' python base images cannot be pulled here) and the HTTP server's
        (nginx:alpine cannot be pulled either). The musl flavour needs an Alpine base: on the
        system daemon it is built from loadgen/docker/Dockerfile.musl (pulling its base);
        on the private one it cannot be had. Without a daemon (a fake), the Dockerfile
        builds (:meth:`_build_from_dockerfiles`)."""
        docker, plan = self._images_docker, self._plan
        if docker is None or plan is None:
            self._build_from_dockerfiles()
            return
        imgs = self.settings.images
        wanted = {
            imgs.musl if (d := p.load.dns) and d.resolver == "musl" else imgs.glibc
            for p in plan.phases
        }
        musl = wanted - {imgs.glibc}
        if musl and self.settings.build_images and self.settings.private_docker:
            raise BackendError(
                f"{sorted(musl)}: only the glibc loadgen image can be built here (the musl one "
                "needs an Alpine base, which the private dockerd cannot pull); pass "
                "--loadgen-image with prebuilt images, or run on a Docker daemon that can pull"
            )
        wanted.add(imgs.glibc)  # the node tuner runs in the glibc image
        project = self.settings.project_dir
        for tag in sorted(wanted):
            if self.settings.build_images and tag in musl:
                with self.stages.stage(f"docker build {tag}"):
                    dockerfile = str(project / DOCKERFILES["musl"])
                    self._run(commands.docker_build(dockerfile, tag, str(project)))
            elif self.settings.build_images:
                with self.stages.stage(f"loadgen image {tag} (built or checked)") as stage:
                    had = loadgenimage.present(docker, tag, project)
                    loadgenimage.build(docker, tag, project)
                    stage.result = f"{tag} {'present' if had else 'built'}"
            self.load_image(tag)
        if self.settings.build_images:
            with self.stages.stage("HTTP server image (built or checked)") as stage:
                had = kindbase.image_exists(docker, loadgenimage.http_server_tag())
                http = loadgenimage.build_http_server(docker)
                stage.result = f"{http} {'present' if had else 'built'}"
            imgs = self.settings.images = dataclasses.replace(imgs, http_server=http)
            self.load_image(http)
        # node-cache's image cannot be built here (k8s.io/dns: 403) nor pulled: NodeLocal runs
        # its labelled stand-in on the node image's CoreDNS (kube.nodelocaldns.StandIn)
        stand_in = kindimages.coredns_image(release().coredns)
        self.settings.images = dataclasses.replace(imgs, nodelocal_stand_in=stand_in)

    def start(self, stack: ExitStack, plan: RunPlan, run_id: str, workdir: Path) -> Started:
        self._plan = plan
        if self.settings.private_docker:
            self._docker = self._private_docker(stack, run_id)
            self._images_docker = self._docker
        else:
            self._images_docker = self._system_docker(stack)
        name = self._cluster = self.cluster_name(run_id)
        kubeconfig = str(workdir / "kubeconfig")
        made_for = kindconfig.fingerprint(plan, self.settings.config)
        if name in self.existing_clusters():
            found = self._fingerprint(name)
            if found in (None, made_for):
                with self.stages.stage(f"reusing the kind cluster {name}") as stage:
                    self._run(commands.kind_export_kubeconfig(name, kubeconfig))
                    kept_by = "`conntrack-harness up`" if self.settings.up else "an earlier run"
                    stage.result = self._reused = (
                        f"kept by {kept_by} for the same cluster config and version"
                        if found
                        else "as found (not made by conntrack-harness)"
                    )
                self._node_image_source = NODE_IMAGE_REUSED
                return Started(kubeconfig)
            # kept by a run of another cluster config (nodes, kube-proxy mode, domain...) or
            # another version of this project: rebuilt, never reused as if it were this one's
            with self.stages.stage(
                f"deleting the kept kind cluster {name} (made for another cluster config or "
                "version of conntrack-harness)"
            ):
                self._run(commands.kind_delete(name, kubeconfig))
        cfg = workdir / "kind.yaml"
        cfg.write_text(kindconfig.render_yaml(plan, name, self.settings.config))
        if not self.settings.keep_cluster:
            if not self.settings.private_docker and isinstance(self._guard, SysctlGuard):
                # on a daemon this run did not start, a killed run's `restore` deletes the
                # cluster (the private dockerd's sweep removes every container on that path)
                self._guard.journal.record(
                    KIND_CLUSTER_OP,
                    name=name,
                    kind=shutil.which(commands.KIND) or commands.KIND,
                    docker_host=os.environ.get("DOCKER_HOST", ""),
                    path=os.environ.get("PATH", ""),
                )
            stack.callback(self._run, commands.kind_delete(name, kubeconfig))
        with self.stages.stage(f"kind create cluster {name} ({self.expected_nodes(plan)} nodes)"):
            self._run(
                commands.kind_create(
                    name, str(cfg), kubeconfig, image=self.settings.config.node_image
                ),
                timeout_s=self.settings.timeout_s,
            )
        if self.settings.keep_cluster:  # what it was made for, so a later run can tell
            mark = f"printf %s {made_for} > {FINGERPRINT_FILE}"
            self._run(commands.docker_exec(f"{name}-control-plane", ["sh", "-c", mark]))
        rec = up.read() if self.settings.up else None
        if rec is not None and rec.cluster == name:  # `up`'s cluster, made again for this plan
            up.write(
                dataclasses.replace(
                    rec, scenario=plan.scenario, project=__version__, made_at=time.time()
                )
            )
        return Started(kubeconfig)

    def _fingerprint(self, name: str) -> str | None:
        """The fingerprint a kept cluster was made with (None: not one this project made)."""
        try:
            out = self._run(
                commands.docker_exec(f"{name}-control-plane", ["cat", FINGERPRINT_FILE])
            )
        except CommandFailed:
            return None
        return out.stdout.strip() or None

    def expected_nodes(self, plan: RunPlan) -> int:
        return plan.cluster.nodes + 1  # the workers and the control plane

    def load_image(self, tag: str) -> None:
        with self.stages.stage(f"kind load {tag} into the nodes"):
            self._run(commands.kind_load_image(self._cluster, tag))

    def map_nodes(self, plan: RunPlan, nodes: Sequence[Mapping[str, Any]]) -> NodeMap:
        return map_by_label(plan.cluster.node_names(), nodes)

    # --- environment.components ------------------------------------------------------------
    def components(self) -> Components:
        """The kind parts of result.json's ``environment.components``, read from the live
        cluster and tools, each with where it came from: the node image the node containers
        run, the kind CLI's version and the Docker engine's. A part that cannot be read says
        why."""
        out: Components = {}
        for name, read in (
            ("kind-node-image", self._node_image_component),
            ("kind", self._kind_component),
            ("docker", self._docker_component),
        ):
            try:
                out[name] = read()
            except Exception as e:  # never fails the run
                out[name] = unread(e)
        stand_in = self.settings.images.nodelocal_stand_in
        plan = self._plan
        if stand_in and plan and any(p.nodelocal for p in plan.phases):
            out["node-cache"] = nodelocaldns.stand_in_component(
                stand_in,
                f"{release().node_cache} (not built)",
                "k8s.io/dns: 403 from the Go module proxy",
            )
        return out

    def _node_image_component(self) -> dict[str, str]:
        listing = self._run(commands.docker_ps_kind_nodes(self._cluster)).stdout
        images = sorted({ln.split()[-1] for ln in listing.splitlines() if ln.strip()})
        if not images:
            raise BackendError(f"no node containers of kind cluster {self._cluster} found")
        choice = self.settings.choice
        if self._node_image_source == NODE_IMAGE_REUSED:
            source = f"the existing kind cluster {self._cluster}, {self._reused} (CTH_KIND_CLUSTER)"
        elif self._node_image_source == NODE_IMAGE_BUILT:
            rel = release()
            source = (
                "built here from the pinned upstream binaries (harness/upstream/versions.toml: "
                f"Kubernetes {rel.kubernetes}, etcd {rel.etcd}, CoreDNS {rel.coredns}; kind "
                f"{kindparts.pinned()['kind']}'s node layout), nothing pulled"
            )
            if choice is not None:
                source += f"; not the system Docker's: {choice.why}"
        elif self._node_image_source == NODE_IMAGE_SYSTEM and choice is not None:
            source = f"{choice.node_image_note}, from the system Docker daemon"
        elif self.settings.config.node_image:
            source = "named by CTH_KIND_NODE_IMAGE"
        else:
            source = "kind's default node image (pulled by kind)"
        return {
            "version": ", ".join(sorted({image_version(i) for i in images})),
            "image": ", ".join(images),
            "source": f"{source}; image of the node containers",
        }

    def _kind_component(self) -> dict[str, str]:
        words = self._run(commands.kind_version()).stdout.split()
        version = words[1] if len(words) > 1 and words[0] == "kind" else " ".join(words)
        if not (self._kind_built or self.settings.private_docker):
            return {"version": version, "source": f"kind on PATH ({shutil.which(commands.KIND)})"}
        pinned = kindparts.pinned()["kind"]
        source = f"go install {kindparts.KIND_MODULE}@{pinned}"
        try:
            done = json.loads((component_dir("kind", pinned) / ".complete").read_text())
            source = f"go install {' '.join(done['source'])}"
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return {
            "version": version,
            "source": f"built here: {source} (pinned in harness/upstream/versions.toml [kind])",
        }

    def _docker_component(self) -> dict[str, str]:
        version = self._run(commands.docker_info(), timeout_s=30).stdout.strip()
        if self.settings.private_docker:
            where = f"this project's private dockerd ({dockerd.DOCKERD}, this host's package)"
        else:
            where = "the system Docker daemon"
        if self.settings.choice is not None:
            where = f"{where}: {self.settings.choice.docker}"
        return {"version": version, "source": f"{where}; docker info .ServerVersion"}


def undo_cluster_entry(entry: Mapping[str, Any], runner: Runner = subprocess_runner) -> list[str]:
    """``restore``'s undo for a journaled kind cluster of a killed run on the system Docker:
    delete it if it is still there (idempotent), with the kind CLI and daemon the run used."""
    name, kind = str(entry["name"]), str(entry.get("kind") or commands.KIND)
    env = {
        k: str(entry.get(e) or "") for k, e in (("DOCKER_HOST", "docker_host"), ("PATH", "path"))
    }
    with environ_set({k: v for k, v in env.items() if v}):
        if name not in runner([kind, "get", "clusters"], timeout_s=60).stdout.split():
            return []
        runner([kind, "delete", "cluster", "--name", commands.check_cluster_name(name)])
        return [f"deleted kind cluster {name} (left by a killed run)"]
