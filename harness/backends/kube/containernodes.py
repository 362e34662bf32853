"""Cluster nodes that are Docker containers on this host's kernel (the kind backend).

A subclass says how its cluster starts (:meth:`ContainerNodeBackend.start`), how an image gets
into it (:meth:`ContainerNodeBackend.load_image`) and how scenario nodes map onto its nodes; this
base does the rest, in this order:

1. refuse a host sysctl change without root, before anything is created;
2. start the cluster (undone on every exit path unless kept), wait for its nodes and CoreDNS;
3. build (unless images were given) and load the loadgen images;
4. map the scenario's nodes, take the host guard if the scenario changes host sysctls;
5. realize the shared workload.

:func:`docker_ready` is the check that needs no lock: the Docker CLI is there and its daemon
answers, so a run never changes the host before finding Docker down.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.backends.kube import commands, readiness
from harness.backends.kube.api import DynamicKubeAPI, KubeAPI, wait_until
from harness.backends.kube.cluster import (
    WORKLOAD_STAGE,
    Images,
    KubeCluster,
    Settings,
    realize_workload,
)
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
)
from harness.backends.kube.nodeaccess import DockerNodeAccess
from harness.backends.kube.placement import NodeMap
from harness.backends.kube.proc import Runner, subprocess_runner
from harness.backends.stages import Notice, Stages
from harness.errors import BackendError, CommandFailed
from harness.scenario.model import Scenario

DOCKERFILES = {"glibc": "loadgen/docker/Dockerfile.glibc", "musl": "loadgen/docker/Dockerfile.musl"}


def docker_ready(runner: Runner = subprocess_runner, backend: str = "kind") -> None:
    """The Docker CLI is on PATH (else MissingTool, exit 2) and its daemon answers (else
    BackendError, exit 3)."""
    try:
        runner(commands.docker_info(), timeout_s=30)
    except CommandFailed as e:
        raise BackendError(
            f"--backend {backend} needs a running Docker daemon; `docker info` failed: "
            f"{e.stderr.strip()[-300:] or e}"
        ) from None


@dataclass
class ContainerSettings:
    """The container-node settings (kind adds its own)."""

    images: Images = field(default_factory=lambda: Images(LOADGEN_IMAGE_GLIBC, LOADGEN_IMAGE_MUSL))
    build_images: bool = True  # build loadgen/docker/ (False: the images were given)
    project_dir: Path = Path(".")
    timeout_s: float = 600.0


@dataclass
class Started:
    """A started cluster: its kubeconfig (each node is the container of the same name)."""

    kubeconfig: str


class ContainerNodeBackend:
    name: str
    node_word: str  # "a kind cluster": what the root refusal names

    def __init__(
        self,
        settings: ContainerSettings | None = None,
        *,
        runner: Runner = subprocess_runner,
        api_factory: Callable[[str], KubeAPI] = DynamicKubeAPI,
        guard: SysctlSetter | None = None,
        host_factory: Callable[[], HostSysctls] | None = None,
        euid: Callable[[], int] = os.geteuid,
        notice: Notice | None = None,
    ) -> None:
        """``notice`` hears each setup step as it starts and ends (see :mod:`..stages`)."""
        self.settings = settings or self.default_settings()
        self.stages = Stages(notice, self.name)
        self._run = runner
        self._api_factory = api_factory
        self._guard = guard
        self._host_factory = host_factory
        self._euid = euid

    # --- what a subclass provides ---------------------------------------------------------
    def default_settings(self) -> ContainerSettings:
        raise NotImplementedError

    def start(self, stack: ExitStack, scenario: Scenario, run_id: str, workdir: Path) -> Started:
        """Create (or reuse) the cluster; push its teardown onto ``stack``."""
        raise NotImplementedError

    def load_image(self, tag: str) -> None:
        raise NotImplementedError

    def expected_nodes(self, scenario: Scenario) -> int:
        raise NotImplementedError

    def map_nodes(self, scenario: Scenario, nodes: Sequence[Mapping[str, Any]]) -> NodeMap:
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------------
    def build_and_load_images(self) -> None:
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

    @contextmanager
    def realize(self, scenario: Scenario, run_id: str) -> Iterator[KubeCluster]:
        if needs_host(scenario):  # refuse before anything is created
            require_root(self._euid(), f"shrinking nf_conntrack_max for {self.node_word}")
        timeout_s = self.settings.timeout_s
        st = self.stages
        t0 = st.clock()
        with ExitStack() as stack:
            down = st.teardown(stack)
            try:
                prefix = f"cth-{self.name}-"
                workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
                started = self.start(stack, scenario, run_id, workdir)
                api = self._api_factory(started.kubeconfig)
                want = self.expected_nodes(scenario)
                with st.stage(f"waiting for {want} nodes Ready"):
                    wait_until(
                        f"{self.name} nodes Ready",
                        lambda: readiness.nodes_not_ready(api.list("v1", "Node"), want),
                        timeout_s=timeout_s,
                    )
                with st.stage("waiting for CoreDNS Ready"):
                    wait_until(
                        "CoreDNS Ready",
                        lambda: readiness.deployment_not_ready(
                            api.get("apps/v1", "Deployment", COREDNS_DEPLOYMENT, SYSTEM_NAMESPACE)
                        ),
                        timeout_s=timeout_s,
                    )
                self.build_and_load_images()
                nodes = self.map_nodes(scenario, api.list("v1", "Node"))
                s = Settings(
                    backend=self.name,
                    run_id=run_id,
                    scenario=scenario,
                    api=api,
                    runner=self._run,
                    kubeconfig=started.kubeconfig,
                    images=self.settings.images,
                    access=DockerNodeAccess(self._run),
                    host=self._host() if needs_host(scenario) else None,
                    timeout_s=timeout_s,
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
