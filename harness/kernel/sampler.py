"""Watch each node's conntrack table while load runs.

- nf_conntrack_count at ``hz`` (default 10 Hz) from a descriptor held open in the node's
  namespace (a pread, no process spawned);
- the per-CPU stat counters (insert_failed, drop, early_drop, clash_resolve, ...) at 2 Hz;
- one ``conntrack -L`` snapshot per node when the table first reaches 90 % (else at stop),
  for the state histogram (TIME_WAIT, CLOSE, ...);
- the kernel's 'table full' lines for the nodes' namespaces.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field

from harness.kernel.conntrack import count_dns_entries, parse_stat, stat_delta, state_histogram
from harness.kernel.kmsg import KmsgReader, table_full_lines
from harness.kernel.netns import inode, open_in, run

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
    _snapshot_taken: bool = False

    @property
    def peak(self) -> int:
        return max((c for _, c in self.timeline), default=0)

    @property
    def delta(self) -> dict[str, int]:
        return stat_delta(self.stat_start, self.stat_end)


class NodeProbe:
    """Descriptors opened once inside a node's namespace, read many times."""

    def __init__(self, node: str, ns: str, dns_sources: tuple[str, ...] = (POD_PREFIX,)) -> None:
        """``dns_sources``: original source addresses (or prefixes) whose DNS flows count as
        the pods' DNS entries; the netns backend names its client pods, so the DNS servers'
        own upstream flows (CoreDNS pods forwarding) are not counted as pod DNS."""
        self.node, self.ns = node, ns
        self.dns_sources = dns_sources
        self.count_fd = open_in(ns, COUNT)
        self.stat_fd = open_in(ns, STAT)
        self.inode = inode(ns)

    def count(self) -> int:
        return int(os.pread(self.count_fd, 64, 0))

    def stat(self) -> dict[str, int]:
        return parse_stat(os.pread(self.stat_fd, 1 << 16, 0).decode())

    def listing(self) -> str:
        return run(["conntrack", "-L"], netns=self.ns, check=False, timeout=20).stdout

    def close(self) -> None:
        os.close(self.count_fd)
        os.close(self.stat_fd)


class Sampler:
    """Samples every node in a background thread between ``start()`` and ``stop()``."""

    def __init__(
        self,
        probes: list[NodeProbe],
        conntrack_max: int,
        hz: float = 10.0,
        snapshot_fill: float = 0.9,
    ) -> None:
        self.probes = probes
        self.hz = hz
        self.snapshot_fill = snapshot_fill
        self.series = {p.node: NodeSeries(p.node, p.ns, conntrack_max) for p in probes}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._snapshots: list[threading.Thread] = []
        self._kmsg: KmsgReader | None = None
        self.t0 = 0.0
        self.cpu_s = 0.0

    def start(self) -> None:
        self._kmsg = KmsgReader()
        self.t0 = time.monotonic()
        for p in self.probes:
            self.series[p.node].stat_start = p.stat()
        self._thread = threading.Thread(target=self._loop, name="conntrack-sampler", daemon=True)
        self._thread.start()

    def _snapshot(self, probe: NodeProbe, s: NodeSeries) -> None:
        listing = probe.listing()
        s.states_at_peak = state_histogram(listing)
        s.dns_entries_at_peak = count_dns_entries(listing, probe.dns_sources)

    def _loop(self) -> None:
        period = 1.0 / self.hz
        n = 0
        cpu0 = time.thread_time()
        next_t = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic() - self.t0
            for p in self.probes:
                s = self.series[p.node]
                c = p.count()
                s.timeline.append((round(now, 3), c))
                if n % max(1, int(self.hz / 2)) == 0:
                    s.stat_timeline.append((round(now, 3), p.stat()))
                if not s._snapshot_taken and c >= self.snapshot_fill * s.max:
                    s._snapshot_taken = True
                    t = threading.Thread(target=self._snapshot, args=(p, s), daemon=True)
                    t.start()
                    self._snapshots.append(t)
            n += 1
            next_t += period
            self._stop.wait(max(0.0, next_t - time.monotonic()))
        self.cpu_s = time.thread_time() - cpu0

    def stop(self) -> dict[str, NodeSeries]:
        self._stop.set()
        if self._thread:
            self._thread.join()
        for t in self._snapshots:
            t.join()
        for p in self.probes:
            s = self.series[p.node]
            s.stat_end = p.stat()
            if not s._snapshot_taken:
                self._snapshot(p, s)
        lines = self._kmsg.read_new() if self._kmsg else []
        if self._kmsg:
            self._kmsg.close()
        for p in self.probes:
            self.series[p.node].table_full = table_full_lines(lines, {p.inode})
        return self.series

    @property
    def duration(self) -> float:
        return time.monotonic() - self.t0
