"""One phase's raw measurements, as any backend reports them to the result builder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cthcommon.resolvconf import ResolvConf
from harness.kernel.sampler import NodeSeries


@dataclass
class PhaseMeasurement:
    """Raw measurements of one phase, before they are shaped into result.json."""

    load: dict[str, Any]
    series: dict[str, NodeSeries]
    node_counters: dict[str, dict[str, int]]
    server_counters: dict[str, int]
    conntrack_max: int
    duration_s: float
    resolv: ResolvConf
    sampler_cpu_s: float
    extra: dict[str, Any] = field(default_factory=dict)
    kernel: str = ""
