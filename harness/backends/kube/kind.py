"""``--harness-backend kind``: a real cluster from the kind CLI, created (or reused) per run."""

from __future__ import annotations

import dataclasses
import json
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
from harness.backends.kube.components import Components, image_version, unread
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
from harness.plan import plan_run
from harness.scenario.model import Scenario
from harness.upstream import component_dir, kindparts, locate, release

__all__ = ["DOCKERFILES", "KindBackend", "KindSettings", "preflight"]

NODE_IMAGE_BUILT = "built"
NODE_IMAGE_REUSED = "reused"


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
    _node_image_source: str | None = None  # NODE_IMAGE_BUILT/REUSED, set by start()

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
        st = self.stages
        with st.stage("starting the private dockerd"):
            docker = stack.enter_context(dockerd.running(self._journal(stack, run_id)))
        with st.stage(f"kind {kindparts.pinned()['kind']} CLI (pinned, built here)"):
            tools = [kindparts.build("kind"), locate("kubectl").parent]
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
                with self.stages.stage(f"loadgen image {tag} (built or checked)"):
                    loadgenimage.build(docker, tag, self.settings.project_dir)
            self.load_image(tag)
        if self.settings.build_images:
            with self.stages.stage("HTTP server image (built or checked)") as stage:
                http = loadgenimage.build_http_server(docker)
                stage.result = http
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
            with self.stages.stage(f"reusing the kind cluster {name}"):
                self._run(commands.kind_export_kubeconfig(name, kubeconfig))
            self._node_image_source = NODE_IMAGE_REUSED
            return Started(kubeconfig)
        cfg = workdir / "kind.yaml"
        cfg.write_text(kindconfig.render_yaml(scenario, name, self.settings.config))
        if not self.settings.keep_cluster:
            stack.callback(self._run, commands.kind_delete(name, kubeconfig))
        with self.stages.stage(
            f"kind create cluster {name} ({self.expected_nodes(scenario)} nodes)"
        ):
            self._run(
                commands.kind_create(
                    name, str(cfg), kubeconfig, image=self.settings.config.node_image
                ),
                timeout_s=self.settings.timeout_s,
            )
        return Started(kubeconfig)

    def expected_nodes(self, scenario: Scenario) -> int:
        return scenario.cluster.nodes + 1  # the workers and the control plane

    def load_image(self, tag: str) -> None:
        with self.stages.stage(f"kind load {tag} into the nodes"):
            self._run(commands.kind_load_image(self._cluster, tag))

    def map_nodes(self, scenario: Scenario, nodes: Sequence[Mapping[str, Any]]) -> NodeMap:
        return map_by_label(scenario_nodes(scenario.cluster.nodes), nodes)

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
        scenario = self._scenario
        if stand_in and scenario and any(p.nodelocal for p in plan_run(scenario).phases):
            out["node-cache"] = {
                "version": f"{release().node_cache} (not built)",
                "source": f"stand-in: {stand_in} runs node-cache's Corefile; node-cache's "
                "interface and NOTRACK rules come from a node tuner (k8s.io/dns: 403 from "
                "the Go module proxy)",
            }
        return out

    def _node_image_component(self) -> dict[str, str]:
        listing = self._run(commands.docker_ps_kind_nodes(self._cluster)).stdout
        images = sorted({ln.split()[-1] for ln in listing.splitlines() if ln.strip()})
        if not images:
            raise BackendError(f"no node containers of kind cluster {self._cluster} found")
        if self._node_image_source == NODE_IMAGE_REUSED:
            source = f"the existing kind cluster {self._cluster}, as found (CTH_KIND_CLUSTER)"
        elif self._node_image_source == NODE_IMAGE_BUILT:
            rel = release()
            source = (
                "built here from the pinned upstream binaries (harness/upstream/versions.toml: "
                f"Kubernetes {rel.kubernetes}, etcd {rel.etcd}, CoreDNS {rel.coredns}; kind "
                f"{kindparts.pinned()['kind']}'s node layout), nothing pulled"
            )
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
        if not self.settings.private_docker:
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
        where = (
            f"this project's private dockerd ({dockerd.DOCKERD}, this host's package)"
            if self.settings.private_docker
            else "the system Docker daemon"
        )
        return {"version": version, "source": f"{where}; docker info .ServerVersion"}
