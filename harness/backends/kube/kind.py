"""``--harness-backend kind``: a real cluster from the kind CLI, created (or reused) per run."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.backends.kube import commands, dockerd, kindconfig, kindnode, loadgenimage, readiness
from harness.backends.kube.api import DynamicKubeAPI, KubeAPI, wait_until
from harness.backends.kube.cluster import Images, KubeCluster, Settings, realize_workload
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
    scenario_nodes,
)
from harness.backends.kube.nodeaccess import DockerNodeAccess
from harness.backends.kube.placement import map_by_label
from harness.backends.kube.plan import client_image
from harness.backends.kube.proc import Runner, subprocess_runner
from harness.errors import BackendError, BadInput
from harness.kernel.journal import Journal
from harness.kernel.sysctl import SysctlGuard
from harness.scenario.model import Scenario
from harness.upstream import component_dir, kindparts, release

# k3s builds from these (kind builds its loadgen image itself: see loadgenimage)
DOCKERFILES = {"glibc": "loadgen/docker/Dockerfile.glibc", "musl": "loadgen/docker/Dockerfile.musl"}


@dataclass
class KindSettings:
    cluster_name: str | None = None  # reuse this cluster if it exists; default cth-<run id>
    keep_cluster: bool = False
    config: kindconfig.KindOptions = field(default_factory=kindconfig.KindOptions)
    images: Images = field(default_factory=lambda: Images(LOADGEN_IMAGE_GLIBC, LOADGEN_IMAGE_MUSL))
    build_images: bool = True
    # True: this project's own dockerd, node image and loadgen image, built here with
    # nothing pulled (air-gapped). False: the docker and kind already on PATH, kind's
    # upstream node image, loadgen images from loadgen/docker (needs registry access).
    private_docker: bool = True
    project_dir: Path = Path(".")
    timeout_s: float = 600.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> KindSettings:
        """Settings from ``CTH_KIND_NODE_IMAGE``, ``CTH_KIND_CLUSTER`` and ``CTH_KIND_KEEP``
        (what the kind workflow sets), then explicit overrides (CLI flags) on top."""
        keep = environ.get("CTH_KIND_KEEP", "").lower()
        if keep not in ("", "0", "1", "true", "false"):
            raise BadInput("must be 0/1/true/false", field="CTH_KIND_KEEP", value=keep)
        docker = environ.get("CTH_KIND_DOCKER", "private")
        if docker not in ("private", "system"):
            raise BadInput(
                "must be private or system",
                field="CTH_KIND_DOCKER",
                value=docker,
                allowed=["private", "system"],
            )
        base: dict[str, Any] = {
            "cluster_name": environ.get("CTH_KIND_CLUSTER") or None,
            "keep_cluster": keep in ("1", "true"),
            "private_docker": docker == "private",
            "config": kindconfig.KindOptions(node_image=environ.get("CTH_KIND_NODE_IMAGE") or None),
        }
        base.update(overrides)
        return cls(**base)


class KindBackend:
    name = "kind"

    def __init__(
        self,
        settings: KindSettings | None = None,
        *,
        runner: Runner = subprocess_runner,
        api_factory: Callable[[str], KubeAPI] = DynamicKubeAPI,
        guard: SysctlSetter | None = None,
        host_factory: Callable[[], HostSysctls] | None = None,
        euid: Callable[[], int] = os.geteuid,
    ) -> None:
        self.settings = settings or KindSettings()
        self._run = runner
        self._api_factory = api_factory
        self._guard = guard
        self._host_factory = host_factory
        self._euid = euid

    def cluster_name(self, run_id: str) -> str:
        return self.settings.cluster_name or f"cth-{check_run_id(run_id)}"

    def existing_clusters(self) -> list[str]:
        return self._run(commands.kind_get_clusters()).stdout.split()

    def build_and_load_images(
        self, cluster: str, scenario: Scenario, docker: dockerd.Dockerd | None = None
    ) -> None:
        """Build and load the loadgen images. With the system docker: both flavours from
        loadgen/docker. With the private one: the images the scenario's phases use, built
        here (never pulled: the Dockerfiles' python base images cannot be had)."""
        imgs = self.settings.images
        wanted = {imgs.glibc, imgs.musl}
        if docker is not None:
            wanted = {client_image(scenario, p, imgs.glibc, imgs.musl) for p in scenario.phases}
            wanted.add(imgs.glibc)  # the node tuner runs in the glibc image
        for flavour, tag in (("glibc", imgs.glibc), ("musl", imgs.musl)):
            if tag not in wanted:
                continue
            if not self.settings.build_images:
                pass
            elif docker is None:
                dockerfile = str(self.settings.project_dir / DOCKERFILES[flavour])
                self._run(commands.docker_build(dockerfile, tag, str(self.settings.project_dir)))
            else:
                if flavour != "glibc":
                    raise BackendError(
                        f"{tag}: only the glibc loadgen image can be built here (the musl one "
                        "needs an Alpine base image, which cannot be pulled); pass "
                        "--loadgen-image with a prebuilt one"
                    )
                loadgenimage.build(docker, tag, self.settings.project_dir)
            self._run(commands.kind_load_image(cluster, tag))
        if docker is not None and self.settings.build_images:
            http = loadgenimage.build_http_server(docker)
            self.settings.images = dataclasses.replace(imgs, http_server=http)
            self._run(commands.kind_load_image(cluster, http))

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
        docker = stack.enter_context(dockerd.running(self._journal(stack, run_id)))
        tools = [kindparts.build("kind")]
        kubectl = component_dir("kubectl", release().kubernetes)
        if (kubectl / "kubectl").is_file():
            tools.append(kubectl)
        # dockerd.running restores PATH (and DOCKER_HOST) when it ends
        os.environ["PATH"] = ":".join([*map(str, tools), os.environ.get("PATH", "")])
        if self.settings.config.node_image is None:
            image = kindnode.build(docker)
            self.settings.config = dataclasses.replace(self.settings.config, node_image=image)
        return docker

    @contextmanager
    def realize(self, scenario: Scenario, run_id: str) -> Iterator[KubeCluster]:
        host: HostSysctls | None = None
        if needs_host(scenario):  # refuse before anything is created
            require_root(self._euid(), "shrinking nf_conntrack_max for a kind cluster")
        name = self.cluster_name(run_id)
        with ExitStack() as stack:
            docker = self._private_docker(stack, run_id) if self.settings.private_docker else None
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cth-kind-")))
            kubeconfig = str(workdir / "kubeconfig")
            if name in self.existing_clusters():
                self._run(commands.kind_export_kubeconfig(name, kubeconfig))
            else:
                cfg = workdir / "kind.yaml"
                cfg.write_text(kindconfig.render_yaml(scenario, name, self.settings.config))
                if not self.settings.keep_cluster:
                    stack.callback(self._run, commands.kind_delete(name, kubeconfig))
                self._run(
                    commands.kind_create(
                        name, str(cfg), kubeconfig, image=self.settings.config.node_image
                    ),
                    timeout_s=self.settings.timeout_s,
                )
            api = self._api_factory(kubeconfig)
            wait_until(
                "kind nodes Ready",
                lambda: readiness.nodes_not_ready(
                    api.list("v1", "Node"), scenario.cluster.nodes + 1
                ),
                timeout_s=self.settings.timeout_s,
            )
            wait_until(
                "CoreDNS Ready",
                lambda: readiness.deployment_not_ready(
                    api.get("apps/v1", "Deployment", COREDNS_DEPLOYMENT, SYSTEM_NAMESPACE)
                ),
                timeout_s=self.settings.timeout_s,
            )
            self.build_and_load_images(name, scenario, docker)
            nodes = map_by_label(scenario_nodes(scenario.cluster.nodes), api.list("v1", "Node"))
            if needs_host(scenario):
                host = self._host()
            s = Settings(
                backend=self.name,
                run_id=run_id,
                scenario=scenario,
                api=api,
                runner=self._run,
                kubeconfig=kubeconfig,
                images=self.settings.images,
                access=DockerNodeAccess(self._run),
                host=host,
                timeout_s=self.settings.timeout_s,
            )
            with realize_workload(s, nodes) as cluster:
                yield cluster
