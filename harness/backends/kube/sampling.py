"""Watch each cluster node's conntrack table while a phase's load runs.

The netns sampler reads descriptors held open in each node namespace at 10 Hz; a cluster node
is reached through a command (``docker exec`` into a kind/k3s node container, ``kubectl exec``
into the probe pod on a real node), so here one round reads every node's count and stat
counters with one command each, as often as the caller asks (1-2 Hz is practical). The result
is the same :class:`harness.kernel.sampler.NodeSeries` the netns backend produces:

- ``timeline``/``stat_timeline`` from every round, ``stat_start``/``stat_end`` around the load;
- one ``conntrack -L`` snapshot per node when its table first reaches ``snapshot_fill`` of the
  max (else at stop), for the state histogram, where the node lets us list (not on a probe pod);
- the kernel's "table full" lines. kind and k3s nodes share this host's kernel, so the host's
  ``/dev/kmsg`` has them, attributed to a node by its network namespace inode.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Protocol

from harness.backends.kube.counters import NodeStat
from harness.kernel.conntrack import count_dns_entries, state_histogram
from harness.kernel.kmsg import TABLE_FULL, table_full_lines
from harness.kernel.sampler import NodeSeries

COUNTERS = ("drop", "early_drop", "insert_failed", "clash_resolve", "insert", "invalid")


class SampledAccess(Protocol):
    def stat(self, node: str) -> NodeStat: ...

    def listing(self, node: str) -> str: ...

    def netns_inode(self, node: str) -> int | None: ...


class KernelLog(Protocol):
    def read_new(self) -> list[str]: ...

    def close(self) -> None: ...


def counters(stat: NodeStat) -> dict[str, int]:
    """The event counters of a node's stat (the table size is in the timeline, not here)."""
    return {k: int(stat[k]) for k in COUNTERS}  # type: ignore[literal-required]


class KubeSampler:
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
        self.access = access
        self.nodes = dict(nodes)
        self.snapshot_fill = snapshot_fill
        self.series = {
            label: NodeSeries(label, real, conntrack_max) for label, real in self.nodes.items()
        }
        self.notes: list[str] = []
        self._kernel_log_factory = kernel_log
        self._log: KernelLog | None = None
        self._inodes: dict[str, int | None] = {}
        self._clock = clock
        self._cpu = cpu_clock
        self.t0 = 0.0
        self.t_end: float | None = None
        self.cpu_s = 0.0

    def _timed(self, fn: Callable[[], None]) -> None:
        c0 = self._cpu()
        try:
            fn()
        finally:
            self.cpu_s += self._cpu() - c0

    def start(self) -> None:
        def go() -> None:
            self._log = self._kernel_log_factory()
            if self._log is None:
                self.notes.append("kernel log not readable: table_full lines are not counted")
            for label, real in self.nodes.items():
                self.series[label].stat_start = counters(self.access.stat(real))
                self._inodes[label] = self.access.netns_inode(real) if self._log else None
            self.t0 = self._clock()

        self._timed(go)

    def sample(self) -> dict[str, int]:
        """One round; returns each node's live count (for progress lines)."""
        live: dict[str, int] = {}

        def go() -> None:
            now = round(self._clock() - self.t0, 3)
            for label, real in self.nodes.items():
                s = self.series[label]
                st = self.access.stat(real)
                s.timeline.append((now, int(st["count"])))
                s.stat_timeline.append((now, counters(st)))
                live[label] = int(st["count"])
                if not s._snapshot_taken and st["count"] >= self.snapshot_fill * s.max > 0:
                    s.snapshot_at = (now, int(st["count"]), "first reached 90% of max")
                    self._snapshot(label)

        self._timed(go)
        return live

    def _snapshot(self, label: str) -> None:
        s = self.series[label]
        s._snapshot_taken = True
        listing = self.access.listing(self.nodes[label])
        if listing:
            s.states_at_peak = state_histogram(listing)
            s.dns_entries_at_peak = count_dns_entries(listing)

    def stop(self) -> dict[str, NodeSeries]:
        def go() -> None:
            self.t_end = self._clock()
            for label, real in self.nodes.items():
                s = self.series[label]
                st = self.access.stat(real)
                s.stat_end = counters(st)
                if not s._snapshot_taken:
                    at = round(self.t_end - self.t0, 3)
                    s.snapshot_at = (at, int(st["count"]), "end of phase")
                    self._snapshot(label)
            if self._log is None:
                return
            lines = self._log.read_new()
            self._log.close()
            unattributed = 0
            for label in self.nodes:
                ino = self._inodes.get(label)
                if ino is not None:
                    self.series[label].table_full = table_full_lines(lines, {ino})
            for line in lines:
                m = TABLE_FULL.search(line)
                if m and not m.group(1):
                    unattributed += 1
            if unattributed:
                self.notes.append(
                    f"{unattributed} 'table full' kernel lines name no network namespace "
                    "(older kernel): not attributed to a node"
                )

        self._timed(go)
        return self.series

    @property
    def duration(self) -> float:
        end = self.t_end if self.t_end is not None else self._clock()
        return end - self.t0
