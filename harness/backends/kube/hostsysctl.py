"""Host-global sysctls for the container-node backend (kind), through the host guard.

kind nodes are containers that share the host kernel. ``nf_conntrack_max`` (and
``nf_conntrack_buckets``) are global and writable only in the host's initial namespace, so a
scenario that shrinks the table changes the host, through the harness's journaled guard
(``harness.kernel.sysctl.SysctlGuard``), which restores it at the end or on ``restore``.

The guard is the runner's own instance (it journals into the run's journal), passed to the
backend by :func:`harness.backends.registry.make_cluster`; the backend never makes its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from cthcommon.errors import NotRoot
from harness.plan.types import CONNTRACK_MAX, PhasePlan, RunPlan, SysctlPlan

NF_MAX = CONNTRACK_MAX


class SysctlSetter(Protocol):
    """What the backend needs of the guard: a journaled set (restore is the guard's job)."""

    def set(self, name: str, value: int | str, netns: str | None = None) -> object: ...


class HostSysctls(Protocol):
    def get(self, name: str) -> str: ...

    def set(self, name: str, value: int | str) -> None: ...


def _read_proc(name: str) -> str:
    return Path("/proc/sys", *name.split(".")).read_text().strip()


class GuardedHostSysctls:
    """HostSysctls over the guard: reads /proc/sys, writes through the journaled ``set``."""

    def __init__(
        self,
        guard: SysctlSetter,
        read: Callable[[str], str] = _read_proc,
        euid: Callable[[], int] = os.geteuid,
    ) -> None:
        self._guard = guard
        self._read = read
        self._euid = euid

    def get(self, name: str) -> str:
        return self._read(name)

    def set(self, name: str, value: int | str) -> None:
        require_root(self._euid(), f"setting the host's {name}")
        self._guard.set(name, value, netns=None)


def require_root(euid: int, what: str) -> None:
    if euid != 0:
        raise NotRoot(
            f"{what} needs root: kind nodes share the host kernel, and {NF_MAX} is global "
            "(writable only in the host's initial namespace). Run with sudo, or drop "
            "host.nf_conntrack_max / nf_conntrack_max from the scenario",
            field="host.nf_conntrack_max",
        )


def _strings(values: SysctlPlan) -> dict[str, str]:
    return {k: str(v) for k, v in values.global_values().items()}


def run_host_sysctls(plan: RunPlan) -> dict[str, str]:
    """Host-global values the whole run needs (node_sysctls' max wins over host's, and
    buckets follow the plan's one rule)."""
    run = plan.sysctls
    cmax = plan.table_max()
    if cmax is not None:
        run = SysctlPlan(conntrack_max=cmax, buckets=run.buckets)
    return _strings(run)


def phase_host_sysctls(plan: PhasePlan) -> dict[str, str]:
    return _strings(plan.sysctls)


def needs_host(plan: RunPlan) -> bool:
    return bool(run_host_sysctls(plan)) or any(phase_host_sysctls(p) for p in plan.phases)
