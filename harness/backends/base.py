"""What every backend offers the runner.

A backend turns a :class:`~harness.scenario.model.ClusterSpec` into a running cluster (a
context manager that cleans up on every exit path), applies a phase's remediations and faults
(another context manager that reverts them), drives load from the client pods, and reads
per-node kernel counters. The runner is backend-agnostic; result.json has the same shape
whichever backend produced it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from harness.result import NodeConntrack
from harness.scenario.model import LoadSpec, Phase, Scenario


class Cluster(Protocol):
    """A realized cluster, valid inside the backend's ``realize`` context."""

    backend: str

    def nodes(self) -> list[str]: ...

    def phase(self, phase: Phase) -> AbstractContextManager[None]:
        """Apply the phase's remediations and faults; revert them on exit."""
        ...

    def reset(self) -> None:
        """Cheap per-phase reset: flush conntrack tables, restart counters."""
        ...


class Backend(Protocol):
    name: str

    def realize(self, scenario: Scenario, run_id: str) -> AbstractContextManager[Cluster]: ...


__all__ = ["Backend", "Cluster", "LoadSpec", "NodeConntrack"]
