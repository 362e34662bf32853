"""tcpdump on ``eth0`` inside each client pod for one phase, started and stopped by PID, on
every backend whose pods' namespaces are this host's (netns; kind, through the pods' sandbox
PIDs): :class:`PhaseCaptures` keeps a run's reduced captures, one per phase.

The capture is opt-in (``run --pcap``): tcpdump reads a copy of each packet off the pod's
interface and does not alter the data path, but it costs CPU, so the phase result records
that it ran and what the kernel dropped from its buffer. The raw files stay in the run's
work directory (removed at teardown); only the reduction (unanswered same-port pairs) is kept.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from cthcommon.errors import BackendError
from harness.capture.pcap import merge, read_pcap, same_port_pairs, write_pcap
from harness.kernel.journal import Journal
from harness.kernel.process import Proc, spawn, stop_pid
from harness.results.schema import CaptureResult

READY_S = 10.0
SETTLE_S = 0.3  # let the last replies reach the file before tcpdump is stopped
DROPPED = re.compile(r"(\d+) packets? dropped by kernel")


@dataclass(frozen=True)
class CaptureSummary:
    """What one phase's capture shows, as result.json carries it (``capture``)."""

    file: str
    queries: int
    same_port_pairs: int
    unanswered_pairs: int
    unanswered_queries: int
    kernel_dropped: int  # packets tcpdump's buffer lost: the counts are short by this many

    def as_result(self) -> CaptureResult:
        return CaptureResult(
            file=self.file,
            tool="tcpdump",
            where="client pods' eth0",
            queries=self.queries,
            same_port_pairs=self.same_port_pairs,
            unanswered_pairs=self.unanswered_pairs,
            unanswered_queries=self.unanswered_queries,
            kernel_dropped=self.kernel_dropped,
        )


def tcpdump_argv(out: Path, iface: str = "eth0", snaplen: int = 256) -> list[str]:
    """DNS on ``iface`` into ``out``, each packet written at once (``-U --immediate-mode``)."""
    # -Z root: do not drop to the tcpdump user, which could not write the work directory
    flags = ["-i", iface, "-n", "-U", "--immediate-mode", "-Z", "root", "-B", "4096"]
    return ["tcpdump", *flags, "-s", str(snaplen), "-w", str(out), "udp", "port", "53"]


class PodCapture:
    """Capture DNS in every given pod namespace while the ``with`` block runs."""

    def __init__(self, journal: Journal, pods: list[tuple[str, str]], workdir: Path) -> None:
        self.journal = journal
        self.pods = pods  # (pod name, namespace)
        self.workdir = workdir
        self.procs: list[Proc] = []

    def _raw(self, pod: str) -> Path:
        return self.workdir / f"{pod}.pcap"

    def __enter__(self) -> PodCapture:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            for pod, ns in self.pods:
                self._raw(pod).unlink(missing_ok=True)
                log = self.workdir / f"{pod}.log"
                log.unlink(missing_ok=True)
                argv = tcpdump_argv(self._raw(pod))
                self.procs.append(spawn(self.journal, f"tcpdump-{pod}", argv, netns=ns, log=log))
            self._wait_ready()
        except BaseException:
            self._stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_S
        for p in self.procs:
            while "listening on" not in p.tail():
                if not p.alive() or time.monotonic() > deadline:
                    raise BackendError(f"tcpdump did not start: {p.tail()}")
                time.sleep(0.02)

    def _stop(self) -> None:
        for p in self.procs:
            stop_pid(p.pid, p.start)

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if t is None:
            time.sleep(SETTLE_S)
        self._stop()

    def reduce(self, out: Path, label: str) -> CaptureSummary:
        """Write the unanswered same-port pairs of all pods to ``out``; summarise them."""
        captures = [read_pcap(self._raw(pod).read_bytes()) for pod, _ in self.pods]
        merged = merge(captures)
        report = same_port_pairs(merged.packets)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(write_pcap(merged, report.keep))
        dropped = sum(int(m) for p in self.procs for m in DROPPED.findall(p.tail(4000)))
        return CaptureSummary(
            file=f"pcap/{label}.pcap",
            queries=report.queries,
            same_port_pairs=report.same_port_pairs,
            unanswered_pairs=report.unanswered_pairs,
            unanswered_queries=report.unanswered_queries,
            kernel_dropped=dropped,
        )


class PhaseCaptures:
    """A run's ``--pcap``: one :class:`PodCapture` a phase, each reduced to its unanswered
    same-port pairs and kept by label (a repeated phase gets ``<phase>-2``, ...) for the bug
    bundle's ``pcap/<label>.pcap``."""

    def __init__(self, journal: Journal, workdir: Path) -> None:
        self.journal = journal
        self.workdir = workdir
        self.pcaps: dict[str, bytes] = {}

    def capture(self, pods: list[tuple[str, str]]) -> PodCapture:
        """tcpdump in each (pod name, namespace handle) while the ``with`` block runs."""
        return PodCapture(self.journal, pods, self.workdir)

    def reduce(self, capture: PodCapture, phase: str) -> CaptureResult:
        label, n = phase, 1
        while label in self.pcaps:  # repeats of a phase
            n += 1
            label = f"{phase}-{n}"
        out = self.workdir / "reduced" / f"{label}.pcap"
        summary = capture.reduce(out, label)
        self.pcaps[label] = out.read_bytes()
        return summary.as_result()
