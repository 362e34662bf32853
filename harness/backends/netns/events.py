"""A phase's endpoint events on the load's clock, and the stale-entry sampler beside them.

:class:`EventRun` scales CoreDNS at each event's ``at_s`` after the load's start, on its own
thread (:meth:`K8sParts.scale_coredns` marks each step). :class:`StaleSampler` reads, once a
second on every node, the UDP entries for the kube-dns ClusterIP:53 with the conntrack tool
in the node's namespace, by reply source (kube-proxy's DNAT target); which of them are stale
is decided afterwards against the EndpointSlices' history
(:func:`harness.results.endpoints.endpoints_result`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from cthcommon.netns import run
from harness.backends.netns.k8s.cluster import K8sParts
from harness.errors import BackendError, HarnessError
from harness.plan.types import ScalePlan
from harness.results.endpoints import Flow, flows

JOIN_S = 60.0  # after the load: the last event's pods Ready and rules synced


class EventRun:
    def __init__(
        self,
        k8s: K8sParts,
        events: Sequence[ScalePlan],
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.k8s = k8s
        self.say = say or (lambda _: None)
        self.planned = list(events)
        # (monotonic, event, pod, ip, replicas or None)
        self.events: list[tuple[float, str, str, str, int | None]] = []
        self.error: BaseException | None = None
        self._cancel = threading.Event()
        self._t0 = 0.0
        self._thread = threading.Thread(target=self._run, name="phase-events", daemon=True)

    def start(self, load_start: float) -> None:
        """Begin; each event fires ``at_s`` after ``load_start`` (CLOCK_MONOTONIC)."""
        self._t0 = load_start
        self._thread.start()

    def _run(self) -> None:
        try:
            for e in self.planned:
                wait = self._t0 + e.at_s - time.monotonic()
                if self._cancel.wait(max(0.0, wait)):
                    return
                self.events.append((time.monotonic(), "scale", e.deployment, "", e.replicas))
                self.say(f"{e.at_s:g} s: scale {e.deployment} to {e.replicas}")
                self.k8s.scale_coredns(e.replicas, self._mark)
        except BaseException as e:  # re-raised on the measuring thread by join()
            self.error = e

    def _mark(self, event: str, pod: str, ip: str) -> None:
        t = time.monotonic()
        self.events.append((t, event, pod, ip, None))
        self.say(f"{t - self._t0:.1f} s: {event} {pod} {ip}".replace("  ", " ").strip())

    def join(self) -> None:
        self._thread.join(JOIN_S)
        if self._thread.is_alive():
            raise BackendError(f"the phase's events did not finish within {JOIN_S:.0f} s")
        if self.error is not None:
            raise BackendError(f"a phase event failed: {self.error}") from self.error

    def cancel(self) -> None:
        self._cancel.set()


class StaleSampler:
    """Every ``period_s``, each node's UDP entries for ``service_ip:port``: (source, source
    port, reply source)."""

    SOURCE = "conntrack -L -p udp -d <ClusterIP> --dport <port>, in each node's namespace"

    def __init__(
        self, nodes: Sequence[tuple[str, str]], service_ip: str, port: int, period_s: float = 1.0
    ) -> None:
        self.nodes = list(nodes)  # (node name, namespace)
        self.service_ip = service_ip
        self.port = port
        self.period_s = period_s
        self.samples: list[tuple[float, str, list[Flow]]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stale-sampler", daemon=True)

    def __enter__(self) -> StaleSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def read(self, ns: str) -> list[Flow]:
        argv = ["conntrack", "-L", "-p", "udp", "-d", self.service_ip, "--dport", str(self.port)]
        listing = run(argv, netns=ns, check=False, timeout=10).stdout
        return flows(listing, self.service_ip, self.port)

    def _run(self) -> None:
        nxt = time.monotonic()
        while not self._stop.is_set():
            t = time.monotonic()
            for name, ns in self.nodes:
                try:
                    self.samples.append((t, name, self.read(ns)))
                except HarnessError as e:  # a sample lost is said, not invented
                    self.errors.append(f"{name}: {e}")
            nxt += self.period_s
            self._stop.wait(max(0.0, nxt - time.monotonic()))
