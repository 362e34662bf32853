"""``--harness-backend k3s``: testcontainers' K3S container as a one-node real cluster.

Every scenario node maps to the one k3s node (no cross-node path: recorded as a note on the
cluster). The node is a container on the host kernel, so nf_conntrack_max goes through the host
guard exactly as on kind, and counters come from ``docker exec`` into the container.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.backends.kube import commands, readiness
from harness.backends.kube.api import DynamicKubeAPI, KubeAPI, wait_until
from harness.backends.kube.cluster import Images, KubeCluster, Settings, realize_workload
from harness.backends.kube.hostsysctl import (
    GuardedHostSysctls,
    HostSysctls,
    SysctlSetter,
    needs_host,
    require_root,
)
from harness.backends.kube.kind import DOCKERFILES
from harness.backends.kube.names import (
    COREDNS_DEPLOYMENT,
    LOADGEN_IMAGE_GLIBC,
    LOADGEN_IMAGE_MUSL,
    SYSTEM_NAMESPACE,
    run_labels,
    scenario_nodes,
)
from harness.backends.kube.nodeaccess import DockerNodeAccess
from harness.backends.kube.placement import map_single
from harness.backends.kube.proc import Runner, pipe, subprocess_runner
from harness.errors import BackendError, MissingTool
from harness.scenario.model import Scenario

K3S_IMAGE = "rancher/k3s:v1.35.4-k3s1"


@dataclass
class K3sSettings:
    image: str = K3S_IMAGE
    images: Images = field(default_factory=lambda: Images(LOADGEN_IMAGE_GLIBC, LOADGEN_IMAGE_MUSL))
    build_images: bool = True
    project_dir: Path = Path(".")
    timeout_s: float = 600.0


def start_k3s(image: str, run_id: str) -> Any:
    """A started K3SContainer (labelled with the run id so a sweeper finds it)."""
    try:
        from testcontainers.community.k3s import K3SContainer
    except ImportError as e:
        raise MissingTool("the k3s backend needs the 'kube' extra (testcontainers)") from e
    container = K3SContainer(image=image, labels=run_labels(run_id))
    try:
        container.start()
    except Exception as e:  # docker.errors.DockerException and the wait's TimeoutError
        container.stop()
        raise BackendError(f"k3s container did not start: {e}") from e
    return container


class K3sBackend:
    name = "k3s"

    def __init__(
        self,
        settings: K3sSettings | None = None,
        *,
        runner: Runner = subprocess_runner,
        api_factory: Callable[[str], KubeAPI] = DynamicKubeAPI,
        start: Callable[[str, str], Any] = start_k3s,
        guard: SysctlSetter | None = None,
        host_factory: Callable[[], HostSysctls] | None = None,
        euid: Callable[[], int] = os.geteuid,
    ) -> None:
        self.settings = settings or K3sSettings()
        self._run = runner
        self._api_factory = api_factory
        self._start = start
        self._guard = guard
        self._host_factory = host_factory
        self._euid = euid

    def load_images(self, container_id: str) -> None:
        for flavour, tag in (
            ("glibc", self.settings.images.glibc),
            ("musl", self.settings.images.musl),
        ):
            if self.settings.build_images:
                dockerfile = str(self.settings.project_dir / DOCKERFILES[flavour])
                self._run(commands.docker_build(dockerfile, tag, str(self.settings.project_dir)))
            save, load = commands.docker_save_into_k3s(tag, container_id)
            pipe(save, load)

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
        if needs_host(scenario):
            require_root(self._euid(), "shrinking nf_conntrack_max for a k3s container")
        with ExitStack() as stack:
            container = self._start(self.settings.image, run_id)
            stack.callback(container.stop)
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cth-k3s-")))
            kubeconfig = workdir / "kubeconfig"
            kubeconfig.write_text(container.config_yaml())
            api = self._api_factory(str(kubeconfig))
            wait_until(
                "the k3s node Ready",
                lambda: readiness.nodes_not_ready(api.list("v1", "Node"), 1),
                timeout_s=self.settings.timeout_s,
            )
            wait_until(
                "CoreDNS Ready",
                lambda: readiness.deployment_not_ready(
                    api.get("apps/v1", "Deployment", COREDNS_DEPLOYMENT, SYSTEM_NAMESPACE)
                ),
                timeout_s=self.settings.timeout_s,
            )
            cid = str(container.get_wrapped_container().id)
            self.load_images(cid)
            nodes = map_single(scenario_nodes(scenario.cluster.nodes), api.list("v1", "Node"))
            host = self._host() if needs_host(scenario) else None
            s = Settings(
                backend=self.name,
                run_id=run_id,
                scenario=scenario,
                api=api,
                runner=self._run,
                kubeconfig=str(kubeconfig),
                images=self.settings.images,
                access=DockerNodeAccess(self._run, lambda _node: cid),
                host=host,
                timeout_s=self.settings.timeout_s,
            )
            notes = []
            if scenario.cluster.nodes > 1:
                notes.append(
                    f"k3s is one node: all {scenario.cluster.nodes} scenario nodes share it, "
                    "so no DNS or HTTP traffic crosses nodes"
                )
            with realize_workload(s, nodes, notes) as cluster:
                yield cluster
