"""Watch each node's conntrack table while load runs: one sampler over a probe protocol.

A :class:`Probe` reaches one node's table however that node is reached: :class:`NodeProbe`
reads descriptors held open in a node's network namespace (a pread, no process spawned; the
netns backend's nodes, and kind's by ``/proc/PID/ns/net``); the cluster
backends' exec probe (``harness.backends.kube.sampling``) runs one command per read. The
:class:`ConntrackSampler` does the same with either:

- each round, every node's nf_conntrack_count, and its stat counters (insert_failed, drop,
  early_drop, clash_resolve, ...) every ``stat_every`` rounds (or whenever the probe has them
  for free);
- one ``conntrack -L`` snapshot per node when its table first reaches ``snapshot_fill`` of the
  max (else at stop), for the state histogram (TIME_WAIT, CLOSE, ...), where the node can list;
- the kernel's 'table full' lines, attributed to a node by its network namespace inode.

Rounds come from the caller (:meth:`ConntrackSampler.sample`) or, for :class:`Sampler`, from a
background thread at ``hz``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from cthcommon.netns import inode, open_in, run
from harness.kernel.conntrack import count_dns_entries, parse_stat, stat_delta, state_histogram
from harness.kernel.kmsg import TABLE_FULL, KmsgReader, table_full_lines

COUNT = "/proc/sys/net/netfilter/nf_conntrack_count"
STAT = "/proc/thread-self/net/stat/nf_conntrack"
POD_PREFIX = "10.244."  # DNS entries whose original source is a pod


@dataclass
class NodeSeries:
    node: str
    ns: str
    max: int
    timeline: list[tuple[float, int]] = field(default_factory=list)
    stat_timeline: list[tuple[float, dict[str, int]]] = field(default_factory=list)
    stat_start: dict[str, int] = field(default_factory=dict)
    stat_end: dict[str, int] = field(default_factory=dict)
    states_at_peak: dict[str, int] = field(default_factory=dict)
    dns_entries_at_peak: int = 0
    table_full: list[str] = field(default_factory=list)
    snapshot_at: tuple[float, int, str] | None = None  # (t_s, count, why)
    _snapshot_taken: bool = False

    @property
    def peak(self) -> int:
        return max((c for _, c in self.timeline), default=0)

    @property
    def delta(self) -> dict[str, int]:
        return stat_delta(self.stat_start, self.stat_end)


@dataclass
class Reading:
    count: int
    stats: dict[str, int] | None = None  # the stat counters, when read this time


class Probe(Protocol):
    """One node's conntrack table. ``node`` labels the series; ``where`` says how it is
    reached (the namespace, the real node)."""

    node: str
    where: str

    def read(self, with_stats: bool) -> Reading:
        """The live count; the stat counters too when asked (or when they come for free)."""
        ...

    def listing(self) -> str:
        """``conntrack -L`` ("" where the node cannot be listed)."""
        ...

    def netns_inode(self) -> int | None:
        """The node's network namespace inode, which names it in 'table full' lines."""
        ...


class KernelLog(Protocol):
    def read_new(self) -> list[str]: ...

    def close(self) -> None: ...


class NodeProbe:
    """A netns node: descriptors opened once inside its namespace, read many times."""

    def __init__(self, node: str, ns: str, dns_sources: tuple[str, ...] = (POD_PREFIX,)) -> None:
        """``dns_sources``: original source addresses (or prefixes) whose DNS flows count as
        the pods' DNS entries; the netns backend names its client pods, so the DNS servers'
        own upstream flows (CoreDNS pods forwarding) are not counted as pod DNS."""
        self.node, self.ns = node, ns
        self.where = ns
        self.dns_sources = dns_sources
        self.count_fd = open_in(ns, COUNT)
        self.stat_fd = open_in(ns, STAT)
        self.inode = inode(ns)

    def count(self) -> int:
        return int(os.pread(self.count_fd, 64, 0))

    def stat(self) -> dict[str, int]:
        return parse_stat(os.pread(self.stat_fd, 1 << 16, 0).decode())

    def read(self, with_stats: bool) -> Reading:
        return Reading(self.count(), self.stat() if with_stats else None)

    def listing(self) -> str:
        return run(["conntrack", "-L"], netns=self.ns, check=False, timeout=20).stdout

    def netns_inode(self) -> int | None:
        return self.inode

    def close(self) -> None:
        os.close(self.count_fd)
        os.close(self.stat_fd)


class ConntrackSampler:
    """Rounds over every probe, between :meth:`start` and :meth:`stop`."""

    def __init__(
        self,
        probes: Sequence[Probe],
        conntrack_max: int,
        *,
        kernel_log: Callable[[], KernelLog | None] = KmsgReader,
        snapshot_fill: float = 0.9,
        stat_every: int = 1,
        dns_src_prefix: str = "",
        snapshot_in_background: bool = False,
        clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self.probes = list(probes)
        self.snapshot_fill = snapshot_fill
        self.stat_every = max(1, stat_every)
        self.dns_src_prefix = dns_src_prefix
        self.snapshot_in_background = snapshot_in_background
        self.series = {p.node: NodeSeries(p.node, p.where, conntrack_max) for p in self.probes}
        self.notes: list[str] = []
        self._kernel_log_factory = kernel_log
        self._log: KernelLog | None = None
        self._inodes: dict[str, int | None] = {}
        self._snapshots: list[threading.Thread] = []
        self._rounds = 0
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
            for p in self.probes:
                self.series[p.node].stat_start = p.read(True).stats or {}
                self._inodes[p.node] = p.netns_inode() if self._log else None
            self.t0 = self._clock()

        self._timed(go)

    def sample(self) -> dict[str, int]:
        """One round; returns each node's live count (for progress lines)."""
        live: dict[str, int] = {}

        def go() -> None:
            now = round(self._clock() - self.t0, 3)
            with_stats = self._rounds % self.stat_every == 0
            self._rounds += 1
            for p in self.probes:
                s = self.series[p.node]
                r = p.read(with_stats)
                s.timeline.append((now, r.count))
                if r.stats is not None:
                    s.stat_timeline.append((now, r.stats))
                live[p.node] = r.count
                if not s._snapshot_taken and r.count >= self.snapshot_fill * s.max > 0:
                    pct = round(self.snapshot_fill * 100)
                    s.snapshot_at = (now, r.count, f"first reached {pct}% of max")
                    self._take_snapshot(p, s)

        self._timed(go)
        return live

    def _take_snapshot(self, probe: Probe, s: NodeSeries) -> None:
        s._snapshot_taken = True
        if not self.snapshot_in_background:
            self._snapshot(probe, s)
            return
        t = threading.Thread(target=self._snapshot, args=(probe, s), daemon=True)
        t.start()
        self._snapshots.append(t)

    def _snapshot(self, probe: Probe, s: NodeSeries) -> None:
        listing = probe.listing()
        if listing:
            s.states_at_peak = state_histogram(listing)
            # the netns probe names its client pods: servers' own upstream flows are not pod DNS
            sources = probe.dns_sources if isinstance(probe, NodeProbe) else self.dns_src_prefix
            s.dns_entries_at_peak = count_dns_entries(listing, sources)

    def stop(self) -> dict[str, NodeSeries]:
        for t in self._snapshots:
            t.join()

        def go() -> None:
            self.t_end = self._clock()
            for p in self.probes:
                s = self.series[p.node]
                end = p.read(True)
                s.stat_end = end.stats or {}
                if not s._snapshot_taken:
                    s._snapshot_taken = True
                    s.snapshot_at = (round(self.t_end - self.t0, 3), end.count, "end of phase")
                    self._snapshot(p, s)
            if self._log is not None:
                lines = self._log.read_new()
                self._log.close()
                self._attribute(lines)

        self._timed(go)
        return self.series

    def _attribute(self, lines: list[str]) -> None:
        for node, ino in self._inodes.items():
            if ino is not None:
                self.series[node].table_full = table_full_lines(lines, {ino})
        unattributed = 0
        for line in lines:
            m = TABLE_FULL.search(line)
            if m and not m.group(1):
                unattributed += 1
        if unattributed:
            self.notes.append(
                f"{unattributed} 'table full' kernel lines name no network namespace "
                "(older kernel): not attributed to a node"
            )

    def live(self) -> dict[str, int]:
        """Each node's last sampled count (for progress lines while a background thread
        samples)."""
        return {n: s.timeline[-1][1] for n, s in self.series.items() if s.timeline}

    @property
    def duration(self) -> float:
        end = self.t_end if self.t_end is not None else self._clock()
        return end - self.t0


class Sampler(ConntrackSampler):
    """The netns nodes, sampled by a background thread at ``hz`` (counts; stats at 2 Hz)
    between ``start()`` and ``stop()``."""

    def __init__(
        self,
        probes: Sequence[NodeProbe],
        conntrack_max: int,
        hz: float = 10.0,
        snapshot_fill: float = 0.9,
        kernel_log: Callable[[], KernelLog | None] = KmsgReader,
    ) -> None:
        super().__init__(
            probes,
            conntrack_max,
            kernel_log=kernel_log,
            snapshot_fill=snapshot_fill,
            stat_every=int(hz / 2),
            dns_src_prefix=POD_PREFIX,
            snapshot_in_background=True,  # `conntrack -L` of a full table takes a while
        )
        self.hz = hz
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        super().start()
        self._thread = threading.Thread(target=self._loop, name="conntrack-sampler", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        period = 1.0 / self.hz
        next_t = time.monotonic()
        while not self._stop.is_set():
            self.sample()
            next_t += period
            self._stop.wait(max(0.0, next_t - time.monotonic()))

    def stop(self) -> dict[str, NodeSeries]:
        self._stop.set()
        if self._thread:
            self._thread.join()
        return super().stop()
