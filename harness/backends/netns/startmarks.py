"""When each stage of an embedded cluster's start-up was done, for the user and the bench.

The stages overlap once independent parts start together (etcd and kube-apiserver, CoreDNS
and the kubelet's objects), so a stage is recorded as the time since the start at which it
was done, not as a duration: ``namespaces 0.2s, pki 0.3s, etcd 0.6s, kube-apiserver 2.4s``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Marks:
    """Seconds from the start to the end of each stage, in the order they were done."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.t0 = clock()
        self.at: dict[str, float] = {}
        self._lock = threading.Lock()

    def mark(self, stage: str) -> float:
        """``stage`` is done now; the seconds since the start."""
        t = self.clock() - self.t0
        with self._lock:
            self.at[stage] = t
        return t

    def line(self) -> str:
        return line(self.at)


def line(at: dict[str, float]) -> str:
    """``{stage: seconds}`` -> ``"stage 0.2s, other 1.4s"`` in time order (pure)."""
    return ", ".join(f"{k} {v:.2f}s" for k, v in sorted(at.items(), key=lambda kv: kv[1]))
