"""``--harness-backend kind``: a real cluster from the kind CLI, created (or reused) per run."""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.backends.kube import (
    commands,
    dockerd,
    kindconfig,
    kindimages,
    kindnode,
    loadgenimage,
)
from harness.backends.kube.containernodes import (
    DOCKERFILES,
    ContainerNodeBackend,
    ContainerSettings,
    Started,
    docker_ready,
)
from harness.backends.kube.names import check_run_id, scenario_nodes
from harness.backends.kube.placement import NodeMap, map_by_label
from harness.backends.kube.proc import Runner, subprocess_runner
from harness.errors import BackendError, BadInput, MissingTool
from harness.kernel.journal import Journal
from harness.kernel.sysctl import SysctlGuard
from harness.scenario.model import Scenario
from harness.upstream import kindparts, locate, release

__all__ = ["DOCKERFILES", "KindBackend", "KindSettings", "preflight"]


@dataclass
class KindSettings(ContainerSettings):
    cluster_name: str | None = None  # reuse this cluster if it exists; default cth-<run id>
    keep_cluster: bool = False
    config: kindconfig.KindOptions = field(default_factory=kindconfig.KindOptions)
    # True: this project's own dockerd, node image and loadgen image, built here with
    # nothing pulled (air-gapped). False: the docker and kind already on PATH, kind's
    # upstream node image, loadgen images from loadgen/docker (needs registry access).
    private_docker: bool = True

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **overrides: Any) -> KindSettings:
        """Settings from ``CTH_KIND_NODE_IMAGE``, ``CTH_KIND_CLUSTER`` and ``CTH_KIND_KEEP``
        (what the kind workflow sets), then explicit overrides (CLI flags) on top."""
        keep = environ.get("CTH_KIND_KEEP", "").lower()
        if keep not in ("", "0", "1", "true", "false"):
            raise BadInput("must be 0/1/true/false", field="CTH_KIND_KEEP", value=keep)
        base: dict[str, Any] = {
            "cluster_name": environ.get("CTH_KIND_CLUSTER") or None,
            "keep_cluster": keep in ("1", "true"),
            "private_docker": docker_mode(environ) == "private",
            "config": kindconfig.KindOptions(node_image=environ.get("CTH_KIND_NODE_IMAGE") or None),
        }
        base.update(overrides)
        return cls(**base)


def docker_mode(environ: Mapping[str, str]) -> str:
    """``CTH_KIND_DOCKER``: ``private`` (default: this project's dockerd and images, nothing
    pulled) or ``system`` (the docker and kind on PATH, upstream images)."""
    mode = environ.get("CTH_KIND_DOCKER", "private")
    if mode not in ("private", "system"):
        raise BadInput(
            "must be private or system",
            field="CTH_KIND_DOCKER",
            value=mode,
            allowed=["private", "system"],
        )
    return mode


PRIVATE_TOOLS = (dockerd.DOCKERD, dockerd.DOCKER, dockerd.RUNC, "iptables-save", "debootstrap")


def preflight(runner: Runner = subprocess_runner, environ: Mapping[str, str] = os.environ) -> None:
    """Before the host lock and any change. Private Docker: dockerd, docker, runc,
    debootstrap and go are installed (the daemon is started by the run). System Docker: kind
    on PATH, and a Docker daemon that answers."""
    if docker_mode(environ) == "private":
        for tool in (*PRIVATE_TOOLS, "go"):
            if shutil.which(tool) is None and not (
                tool == "go" and os.access("/usr/local/go/bin/go", os.X_OK)
            ):
                raise MissingTool(
                    f"--backend kind needs {tool} (apt-get install docker.io debootstrap; Go for "
                    "the upstream builds), or CTH_KIND_DOCKER=system with kind and docker",
                    tool=tool,
                )
        return
    if shutil.which(commands.KIND) is None:
        raise MissingTool("--backend kind needs the kind CLI on PATH", tool=commands.KIND)
    docker_ready(runner, "kind")


class KindBackend(ContainerNodeBackend):
    name = "kind"
    node_word = "a kind cluster"

    settings: KindSettings
    _cluster = ""  # set by start()
    _docker: dockerd.Dockerd | None = None  # the private dockerd, set by start()
    _scenario: Scenario | None = None

    def default_settings(self) -> KindSettings:
        return KindSettings()

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
        docker = stack.enter_context(dockerd.running(self._journal(stack, run_id)))
        tools = [kindparts.build("kind"), locate("kubectl").parent]
        # dockerd.running restores PATH (and DOCKER_HOST) when it ends
        os.environ["PATH"] = ":".join([*map(str, tools), os.environ.get("PATH", "")])
        if self.settings.config.node_image is None:
            image = kindnode.build(docker)
            self.settings.config = dataclasses.replace(self.settings.config, node_image=image)
        return docker

    def build_and_load_images(self) -> None:
        """System Docker: both loadgen flavours from loadgen/docker (the base class). Private:
        the images the scenario's phases use, built here (the Dockerfiles' python base images
        cannot be pulled), and the HTTP server's (nginx:alpine cannot be pulled either)."""
        docker, scenario = self._docker, self._scenario
        if docker is None or scenario is None:
            super().build_and_load_images()
            return
        imgs = self.settings.images
        wanted = {
            imgs.musl if (d := scenario.phase_load(p).dns) and d.resolver == "musl" else imgs.glibc
            for p in scenario.phases
        }
        if wanted - {imgs.glibc} and self.settings.build_images:
            raise BackendError(
                f"{sorted(wanted - {imgs.glibc})}: only the glibc loadgen image can be built "
                "here (the musl one needs an Alpine base, which cannot be pulled); pass "
                "--loadgen-image with prebuilt images"
            )
        wanted.add(imgs.glibc)  # the node tuner runs in the glibc image
        for tag in sorted(wanted):
            if self.settings.build_images:
                loadgenimage.build(docker, tag, self.settings.project_dir)
            self.load_image(tag)
        if self.settings.build_images:
            http = loadgenimage.build_http_server(docker)
            imgs = self.settings.images = dataclasses.replace(imgs, http_server=http)
            self.load_image(http)
        # node-cache's image cannot be built here (k8s.io/dns: 403) nor pulled: NodeLocal runs
        # its labelled stand-in on the node image's CoreDNS (kube.nodelocaldns.StandIn)
        stand_in = kindimages.coredns_image(release().coredns)
        self.settings.images = dataclasses.replace(imgs, nodelocal_stand_in=stand_in)

    def start(self, stack: ExitStack, scenario: Scenario, run_id: str, workdir: Path) -> Started:
        self._scenario = scenario
        if self.settings.private_docker:
            self._docker = self._private_docker(stack, run_id)
        name = self._cluster = self.cluster_name(run_id)
        kubeconfig = str(workdir / "kubeconfig")
        if name in self.existing_clusters():
            self._run(commands.kind_export_kubeconfig(name, kubeconfig))
            return Started(kubeconfig)
        cfg = workdir / "kind.yaml"
        cfg.write_text(kindconfig.render_yaml(scenario, name, self.settings.config))
        if not self.settings.keep_cluster:
            stack.callback(self._run, commands.kind_delete(name, kubeconfig))
        self._run(
            commands.kind_create(name, str(cfg), kubeconfig, image=self.settings.config.node_image),
            timeout_s=self.settings.timeout_s,
        )
        return Started(kubeconfig)

    def expected_nodes(self, scenario: Scenario) -> int:
        return scenario.cluster.nodes + 1  # the workers and the control plane

    def load_image(self, tag: str) -> None:
        self._run(commands.kind_load_image(self._cluster, tag))

    def map_nodes(self, scenario: Scenario, nodes: Sequence[Mapping[str, Any]]) -> NodeMap:
        return map_by_label(scenario_nodes(scenario.cluster.nodes), nodes)
