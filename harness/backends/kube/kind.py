"""``--harness-backend kind``: a real cluster from the kind CLI, created (or reused) per run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.backends.kube import commands, kindconfig
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
from harness.errors import BadInput, MissingTool
from harness.scenario.model import Scenario

__all__ = ["DOCKERFILES", "KindBackend", "KindSettings", "preflight"]


@dataclass
class KindSettings(ContainerSettings):
    cluster_name: str | None = None  # reuse this cluster if it exists; default cth-<run id>
    keep_cluster: bool = False
    config: kindconfig.KindOptions = field(default_factory=kindconfig.KindOptions)

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
            "config": kindconfig.KindOptions(node_image=environ.get("CTH_KIND_NODE_IMAGE") or None),
        }
        base.update(overrides)
        return cls(**base)


def preflight(runner: Runner = subprocess_runner) -> None:
    """Before the host lock and any change: kind on PATH, and a Docker daemon that answers."""
    import shutil

    if shutil.which(commands.KIND) is None:
        raise MissingTool("--backend kind needs the kind CLI on PATH", tool=commands.KIND)
    docker_ready(runner, "kind")


class KindBackend(ContainerNodeBackend):
    name = "kind"
    node_word = "a kind cluster"

    settings: KindSettings
    _cluster = ""  # set by start()

    def default_settings(self) -> KindSettings:
        return KindSettings()

    def cluster_name(self, run_id: str) -> str:
        return self.settings.cluster_name or f"cth-{check_run_id(run_id)}"

    def existing_clusters(self) -> list[str]:
        return self._run(commands.kind_get_clusters()).stdout.split()

    def start(self, stack: ExitStack, scenario: Scenario, run_id: str, workdir: Path) -> Started:
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
