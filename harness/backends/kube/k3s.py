"""``--harness-backend k3s``: testcontainers' K3S container as a one-node real cluster.

Every scenario node maps to the one k3s node (no cross-node path: recorded as a note on the
cluster). The node is a container on the host kernel, so nf_conntrack_max goes through the host
guard exactly as on kind, and counters come from ``docker exec`` into the container.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends.kube import commands
from harness.backends.kube.containernodes import (
    ContainerNodeBackend,
    ContainerSettings,
    Started,
    docker_ready,
)
from harness.backends.kube.names import run_labels, scenario_nodes
from harness.backends.kube.placement import NodeMap, map_single
from harness.backends.kube.proc import Runner, pipe, subprocess_runner
from harness.errors import BackendError, MissingTool
from harness.scenario.model import Scenario

K3S_IMAGE = "rancher/k3s:v1.35.4-k3s1"


@dataclass
class K3sSettings(ContainerSettings):
    image: str = K3S_IMAGE


def preflight(runner: Runner = subprocess_runner) -> None:
    """Before the host lock and any change: testcontainers installed, and a Docker daemon that
    answers (the node is a container; images go in by ``docker save``)."""
    try:
        import testcontainers.community.k3s  # noqa: F401
    except ImportError as e:
        raise MissingTool("the k3s backend needs the 'kube' extra (testcontainers)") from e
    docker_ready(runner, "k3s")


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


class K3sBackend(ContainerNodeBackend):
    name = "k3s"
    node_word = "a k3s container"

    settings: K3sSettings

    def __init__(
        self,
        settings: K3sSettings | None = None,
        *,
        start: Callable[[str, str], Any] = start_k3s,
        **kw: Any,
    ) -> None:
        super().__init__(settings, **kw)
        self._start_container = start
        self._cid = ""

    def default_settings(self) -> K3sSettings:
        return K3sSettings()

    def start(self, stack: ExitStack, scenario: Scenario, run_id: str, workdir: Path) -> Started:
        container = self._start_container(self.settings.image, run_id)
        stack.callback(container.stop)
        kubeconfig = workdir / "kubeconfig"
        kubeconfig.write_text(container.config_yaml())
        cid = self._cid = str(container.get_wrapped_container().id)
        return Started(str(kubeconfig), lambda _node: cid)

    def expected_nodes(self, scenario: Scenario) -> int:
        return 1

    def load_image(self, tag: str) -> None:
        save, load = commands.docker_save_into_k3s(tag, self._cid)
        pipe(save, load)

    def map_nodes(self, scenario: Scenario, nodes: Sequence[Mapping[str, Any]]) -> NodeMap:
        return map_single(scenario_nodes(scenario.cluster.nodes), nodes)

    def notes(self, scenario: Scenario) -> list[str]:
        if scenario.cluster.nodes <= 1:
            return []
        return [
            f"k3s is one node: all {scenario.cluster.nodes} scenario nodes share it, "
            "so no DNS or HTTP traffic crosses nodes"
        ]
