"""The exec probe: a cluster node's conntrack table for the one sampler
(:class:`harness.kernel.sampler.ConntrackSampler`).

A cluster node is reached through a command (``docker exec`` into a kind node container,
``kubectl exec`` into the probe pod on a real node), so one round reads every node's count
and stat counters with one command each, as often as the caller asks (1-2 Hz is practical).
A probe pod cannot list the table (no state histogram there). kind nodes share this
host's kernel, so the host's ``/dev/kmsg`` has their "table full" lines, attributed to a node
by its network namespace inode.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Protocol

from harness.backends.kube.counters import NodeStat
from harness.kernel.sampler import ConntrackSampler, KernelLog, Reading

COUNTERS = ("drop", "early_drop", "insert_failed", "clash_resolve", "insert", "invalid")

__all__ = ["COUNTERS", "ExecProbe", "KernelLog", "KubeSampler", "SampledAccess", "counters"]


class SampledAccess(Protocol):
    def stat(self, node: str) -> NodeStat: ...

    def listing(self, node: str) -> str: ...

    def netns_inode(self, node: str) -> int | None: ...


def counters(stat: NodeStat) -> dict[str, int]:
    """The event counters of a node's stat (the table size is in the timeline, not here)."""
    return {k: int(stat[k]) for k in COUNTERS}  # type: ignore[literal-required]


class ExecProbe:
    """A cluster node through its access (``docker exec``, ``kubectl exec``): one command
    reads the count and the stat counters together, so every read has both."""

    def __init__(self, access: SampledAccess, label: str, real: str) -> None:
        self.access = access
        self.node, self.where = label, real

    def read(self, with_stats: bool) -> Reading:
        st = self.access.stat(self.where)
        return Reading(int(st["count"]), counters(st))

    def listing(self) -> str:
        return self.access.listing(self.where)

    def netns_inode(self) -> int | None:
        return self.access.netns_inode(self.where)


class KubeSampler(ConntrackSampler):
    """One round per :meth:`sample` call, between :meth:`start` and :meth:`stop`.

    ``nodes`` maps the label a series is reported under to the real node it reads.
    """

    def __init__(
        self,
        access: SampledAccess,
        nodes: Mapping[str, str],
        conntrack_max: int,
        *,
        kernel_log: Callable[[], KernelLog | None] = lambda: None,
        snapshot_fill: float = 0.9,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        super().__init__(
            [ExecProbe(access, label, real) for label, real in nodes.items()],
            conntrack_max,
            kernel_log=kernel_log,
            snapshot_fill=snapshot_fill,
            clock=clock,
            cpu_clock=cpu_clock,
        )
        self.access = access
        self.nodes = dict(nodes)
