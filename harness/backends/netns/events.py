"""A phase's endpoint events on the load's clock, and the stale-entry sampler beside them.

:class:`EventRun` runs each event at its ``at_s`` after the load's start, on its own thread:
a CoreDNS scale (:meth:`K8sParts.scale_coredns` marks each step), a kube-proxy restart on a
node (stop by PID, start again, its first rules sync; the Service's entries in that node's
table before and after), a Service deleted and created again (its EndpointSlices and every
node's rules gone, then back). :class:`StaleSampler` reads, once a
second on every node, the UDP entries for the kube-dns ClusterIP:53 with the conntrack tool
in the node's namespace, by reply source (kube-proxy's DNAT target); which of them are stale
is decided afterwards against the EndpointSlices' history
(:func:`harness.results.endpoints.endpoints_result`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from cthcommon.errors import BackendError, HarnessError
from cthcommon.netns import run
from harness.backends.netns.k8s.cluster import K8sParts
from harness.plan.types import EventPlan, KubeProxyRestartPlan, ScalePlan
from harness.results.endpoints import Flow, flows

JOIN_S = 60.0  # after the load: the last event's pods Ready and rules synced


class EventRun:
    def __init__(
        self,
        k8s: K8sParts,
        events: Sequence[EventPlan],
        say: Callable[[str], None] | None = None,
        read: Callable[[str], list[Flow]] | None = None,
    ) -> None:
        self.k8s = k8s
        self.say = say or (lambda _: None)
        self.read = read or (lambda _: [])  # node name -> the Service's entries in its table
        self.planned = list(events)
        # (monotonic, event, pod/node/service, ip, counts: replicas, pid, entries, kept)
        self.events: list[tuple[float, str, str, str, dict[str, int]]] = []
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
                if self._wait_until(e.at_s):
                    return
                if isinstance(e, ScalePlan):
                    self._mark("scale", e.deployment, "", replicas=e.replicas)
                    self.k8s.scale_coredns(e.replicas, self._mark)
                elif isinstance(e, KubeProxyRestartPlan):
                    self._restart(e.node)
                else:
                    self._recreate(e.service, e.at_s + e.down_s)
        except BaseException as e:  # re-raised on the measuring thread by join()
            self.error = e

    def _wait_until(self, at_s: float) -> bool:
        """Sleep until ``at_s`` on the load's clock; True when cancelled."""
        return self._cancel.wait(max(0.0, self._t0 + at_s - time.monotonic()))

    def _restart(self, node: str) -> None:
        """kube-proxy on ``node`` stopped (SIGTERM by PID) and started again with the same
        flags; its first rules sync after that, and the Service's entries on the node."""
        before = set(self.read(node))
        self._mark("kube-proxy-restart", node, "", entries=len(before))
        pid = self.k8s.stop_kube_proxy(node)
        self._mark("kube-proxy-stopped", node, "", pid=pid, entries=len(self.read(node)))
        proc = self.k8s.start_kube_proxy(node)
        self._mark("kube-proxy-started", node, "", pid=proc.pid)
        synced = self.k8s.wait_kube_proxy_synced(node, proc)
        after = set(self.read(node))
        kept = len(before & after)
        self._mark("kube-proxy-synced", node, "", at=synced, entries=len(after), kept=kept)

    def _recreate(self, service: str, create_at_s: float) -> None:
        """``service`` deleted through the API, its EndpointSlices and every node's rules for
        its ClusterIP gone; created again from the same manifest at ``create_at_s``, its
        endpoints and rules back."""
        running = self.k8s.coredns_ips()
        self._mark("service-delete", service, "")
        ip = self.k8s.delete_service(service)
        self._mark("service-deleted", service, ip)
        self.k8s.wait_endpoints_of(service, set())
        self._mark("endpoints", "", "")
        self.k8s.wait_cluster_ip_in_rules(ip, present=False)
        self._mark("rules", "", "")
        if self._wait_until(create_at_s):
            return
        new_ip = self.k8s.create_service(service)
        self._mark("service-created", service, new_ip)
        self.k8s.wait_endpoints_of(service, running)
        self._mark("endpoints", "", ",".join(sorted(running)))
        self.k8s.wait_cluster_ip_in_rules(new_ip, present=True)
        self._mark("rules", "", ",".join(sorted(running)))

    def _mark(self, event: str, pod: str, ip: str, at: float | None = None, **counts: int) -> None:
        t = time.monotonic() if at is None else at
        self.events.append((t, event, pod, ip, counts))
        extra = " ".join(f"{k}={v}" for k, v in counts.items())
        self.say(f"{t - self._t0:.1f} s: {event} {pod} {ip} {extra}".replace("  ", " ").strip())

    def join(self) -> None:
        self._thread.join(JOIN_S)
        if self._thread.is_alive():
            raise BackendError(f"the phase's events did not finish within {JOIN_S:.0f} s")
        if self.error is not None:
            why = str(self.error) or type(self.error).__name__
            raise BackendError(f"a phase event failed: {why}") from self.error

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
