"""The statsd sender's counters, sampled once a second for a phase.

Reads the ``statsd_*`` nft counters in every node (table ``cth_obs``) and ``statsd_rx`` in
every CoreDNS pod's namespace (table ``cth_srv``), once before the load, every ``period_s``
during it and once after; :func:`harness.results.statsd.statsd_result` turns the readings
into where the datagrams went.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

from cthcommon.errors import HarnessError
from harness.backends.netns.counters import read_counters
from harness.results.statsd import NODE_COUNTERS

SOURCE = (
    "nft -j list counters: table inet cth_obs in each node's namespace, table inet cth_srv "
    "in each CoreDNS pod's, once a second"
)


class StatsdSampler:
    def __init__(
        self,
        nodes: Sequence[tuple[str, str]],
        receivers: Sequence[tuple[str, str]],
        period_s: float = 1.0,
    ) -> None:
        self.nodes = list(nodes)  # (node name, namespace)
        self.receivers = list(receivers)  # (pod name, namespace)
        self.period_s = period_s
        # (monotonic, node -> counters, receiver -> statsd_rx)
        self.samples: list[tuple[float, dict[str, dict[str, int]], dict[str, int]]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="statsd-sampler", daemon=True)

    def __enter__(self) -> StatsdSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self.sample()

    def sample(self) -> None:
        t = time.monotonic()
        try:
            nodes = {
                name: {k: v for k, v in read_counters(ns, "cth_obs").items() if k in NODE_COUNTERS}
                for name, ns in self.nodes
            }
            rx = {
                name: read_counters(ns, "cth_srv").get("statsd_rx", 0)
                for name, ns in self.receivers
            }
        except HarnessError as e:  # a sample lost is said, not invented
            self.errors.append(str(e))
            return
        self.samples.append((t, nodes, rx))

    def _run(self) -> None:
        nxt = time.monotonic() + self.period_s
        while not self._stop.wait(max(0.0, nxt - time.monotonic())):
            self.sample()
            nxt += self.period_s
