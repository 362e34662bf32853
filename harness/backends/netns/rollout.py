"""A CoreDNS rollout on its own thread, started with the phase's load (see
:meth:`harness.backends.netns.k8s.cluster.K8sParts.rollout_coredns`)."""

from __future__ import annotations

import threading
import time

from cthcommon.errors import BackendError
from harness.backends.netns.k8s.cluster import K8sParts
from harness.backends.netns.topologyplan import PodPlan

JOIN_S = 90.0  # new pods Ready, then every old one through its grace period


class RolloutRun:
    def __init__(self, k8s: K8sParts, at_s: float) -> None:
        self.k8s = k8s
        self.at_s = at_s
        self.events: list[tuple[float, str, str, str]] = []
        self.error: BaseException | None = None
        self._cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="coredns-rollout", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        if self._cancel.wait(self.at_s):
            return
        try:
            self.k8s.rollout_coredns(self._mark)
        except BaseException as e:  # re-raised on the measuring thread by join()
            self.error = e

    def _mark(self, event: str, pod: PodPlan) -> None:
        self.events.append((time.monotonic(), event, pod.name, pod.ip))

    def join(self) -> None:
        """Wait for the rollout to end (it may outlast the load); raise what it raised."""
        self._thread.join(JOIN_S)
        if self._thread.is_alive():
            raise BackendError(f"the CoreDNS rollout did not finish within {JOIN_S:.0f} s")
        if self.error is not None:
            raise BackendError(f"the CoreDNS rollout failed: {self.error}") from self.error

    def cancel(self) -> None:
        """On a failed phase: do not begin; a rollout under way still ends in join()."""
        self._cancel.set()
