"""Watch every node's kube-proxy through a phase: its /metrics before and after the load,
its RSS and the node's conntrack count once a second
(:func:`harness.results.kubeproxy.kube_proxy_result` turns them into the phase's figures).

Written once for every backend whose nodes share this kernel: it needs only each node's
network namespace (a name or a ``/proc/PID/ns/net`` path: its kube-proxy is host-network, its
metrics on the node's loopback) and the kube-proxy's PID as this host numbers it (netns: the
process the harness started; kind: a process below the node container's init).

The kube-proxy of a node is looked up at each reading (``pid_of``), so one restarted during
the phase is followed under its new PID.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from cthcommon.errors import HarnessError
from cthcommon.netns import http_get
from harness.kernel import sysctl
from harness.results.kubeproxy import KubeProxyPhase, NodeReadings, kube_proxy_result, vmrss_kib

COUNT = "net.netfilter.nf_conntrack_count"
METRICS_PORT = 10249  # kube-proxy's --metrics-bind-address default port, on 127.0.0.1


def scrape(ns: str) -> str | None:
    try:
        status, body = http_get(ns, "127.0.0.1", METRICS_PORT, "/metrics", timeout=5.0)
    except (OSError, HarnessError):
        return None
    return body if status == 200 else None


def rss_of(pid: int | None) -> int | None:
    if pid is None:
        return None
    try:
        return vmrss_kib(Path(f"/proc/{pid}/status").read_text())
    except OSError:  # it exited between the lookup and the read
        return None


class KubeProxyWatch:
    def __init__(
        self,
        nodes: Sequence[tuple[str, str]],
        pid_of: Callable[[str], int | None],
        period_s: float = 1.0,
    ) -> None:
        self.nodes = list(nodes)  # (node name, namespace)
        self.pid_of = pid_of
        self.period_s = period_s
        self.readings = {name: NodeReadings() for name, _ in self.nodes}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kube-proxy-watch", daemon=True)

    def __enter__(self) -> KubeProxyWatch:
        for name, ns in self.nodes:
            r = self.readings[name]
            r.pid = r.pid_before = self.pid_of(name)
            r.before = scrape(ns)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        for name, ns in self.nodes:
            r = self.readings[name]
            r.pid = self.pid_of(name) or r.pid
            r.after = scrape(ns)

    def sample(self) -> None:
        for name, ns in self.nodes:
            t = time.monotonic()
            pid = self.pid_of(name)
            try:
                count: int | None = int(sysctl.read(COUNT, ns))
            except (OSError, ValueError, HarnessError):
                count = None
            r = self.readings[name]
            r.pid = pid if pid is not None else r.pid
            r.samples.append((t, rss_of(pid), count))

    def result(self, load_start: float) -> tuple[KubeProxyPhase, dict[str, str]]:
        """The phase's ``kube_proxy`` (samples timed from the load's start), and what the
        release did not expose (field -> why, for ``unavailable``)."""
        for r in self.readings.values():
            r.samples = [(round(t - load_start, 3), k, c) for t, k, c in r.samples]
        return kube_proxy_result(self.readings)

    def _run(self) -> None:
        nxt = time.monotonic()
        while not self._stop.wait(max(0.0, nxt - time.monotonic())):
            self.sample()
            nxt += self.period_s
