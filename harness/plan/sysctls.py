"""Node conntrack sysctls: the scenario's ``node_sysctls`` for the run, a ``conntrack-sysctls``
remediation for one phase, and the one ``nf_conntrack_buckets`` rule (pure).

Buckets rule, the same on every backend:

- a whole number is written as given;
- ``auto`` is ``nf_conntrack_max / 4`` (as the seed recommends), never below
  :data:`MIN_BUCKETS` (the kernel's own floor for its hash table is larger than a tiny
  table's quarter, and a hash that small only makes lookups slower);
- the max ``auto`` divides is the one in force for that step: the same block's
  ``nf_conntrack_max``, else the run's (``node_sysctls``, else ``host``). With no max anywhere
  in the scenario, ``auto`` is bad input (exit 2): the harness does not guess from the host.

``node_sysctls.nf_conntrack_max`` wins over ``host.nf_conntrack_max`` when both are given (it
is written after it, for the whole run).
"""

from __future__ import annotations

from typing import Literal

from cthcommon.errors import BadInput
from harness.plan.types import CT, SysctlPlan
from harness.scenario.model import ConntrackSysctls, NodeSysctls, Scenario

MIN_BUCKETS = 1024
PER_NODE = (
    "tcp_timeout_time_wait",
    "tcp_timeout_close",
    "udp_timeout",
    "udp_timeout_stream",
)


def buckets_for(
    buckets: int | Literal["auto"] | None, conntrack_max: int | None, *, field: str
) -> int | None:
    """The bucket count to write (None: leave it)."""
    if buckets is None:
        return None
    if buckets != "auto":
        return int(buckets)
    if conntrack_max is None:
        raise BadInput(
            "nf_conntrack_buckets 'auto' is nf_conntrack_max / 4, and the scenario sets no "
            "nf_conntrack_max (in the same block, node_sysctls or host)",
            field=field,
            value="auto",
        )
    return max(conntrack_max // 4, MIN_BUCKETS)


def run_max(scenario: Scenario) -> int | None:
    """The global table size the whole run sets (None: the host's is left as it is)."""
    return scenario.node_sysctls.nf_conntrack_max or scenario.host.nf_conntrack_max


def host_buckets(scenario: Scenario) -> int | None:
    """The global bucket count the run writes with ``host.nf_conntrack_max`` (None: leave).

    A table shrunk alone would keep this host's buckets: 262,144 for a 4,096-entry table is
    0.016 entries per bucket when full, where a real node holds 0.5-4 (kube-proxy sets the max
    to at least 131,072 and raises the hash to at least max/4; the kernel's default is one
    bucket per entry). On insert into a full table the kernel scans a few buckets and reaps
    the expired entries it meets there, so density decides how fast a full table turns over.
    So the run keeps a real node's density: one bucket per entry unless the scenario says."""
    return _run_wide_buckets(
        scenario.host.nf_conntrack_buckets,
        scenario.host.nf_conntrack_max,
        field="host.nf_conntrack_buckets",
    )


def _run_wide_buckets(
    given: int | Literal["auto"] | None, conntrack_max: int | None, *, field: str
) -> int | None:
    """Buckets for a max the whole run sets (``host`` or ``node_sysctls``): as given, else one
    per entry (a real node's density, see :func:`host_buckets`); None when it sets no max."""
    if given is None:
        return None if conntrack_max is None else max(conntrack_max, MIN_BUCKETS)
    return buckets_for(given, conntrack_max, field=field)


def run_sysctls(scenario: Scenario) -> SysctlPlan:
    """``node_sysctls`` for the whole run. Its ``nf_conntrack_max`` gets a real node's bucket
    density unless it gives ``nf_conntrack_buckets`` (the same rule as ``host``'s), so a table
    shrunk there does not keep this host's buckets either."""
    ns: NodeSysctls = scenario.node_sysctls
    per_node = tuple(
        (f"{CT}nf_conntrack_{key}", value)
        for key in PER_NODE
        if (value := getattr(ns, key)) is not None
    )
    field = "node_sysctls.nf_conntrack_buckets"
    if ns.nf_conntrack_max is not None:
        buckets = _run_wide_buckets(ns.nf_conntrack_buckets, ns.nf_conntrack_max, field=field)
    else:  # 'auto' divides the host's max (None: bad input)
        buckets = buckets_for(ns.nf_conntrack_buckets, run_max(scenario), field=field)
    return SysctlPlan(conntrack_max=ns.nf_conntrack_max, buckets=buckets, per_node=per_node)


def remediation_sysctls(r: ConntrackSysctls, scenario: Scenario, where: str) -> SysctlPlan:
    cmax = r.nf_conntrack_max or run_max(scenario)
    per_node: tuple[tuple[str, int], ...] = ()
    if r.tcp_timeout_time_wait is not None:
        per_node = ((f"{CT}nf_conntrack_tcp_timeout_time_wait", r.tcp_timeout_time_wait),)
    return SysctlPlan(
        conntrack_max=r.nf_conntrack_max,
        buckets=buckets_for(r.nf_conntrack_buckets, cmax, field=f"{where}.nf_conntrack_buckets"),
        per_node=per_node,
    )


def merge(a: SysctlPlan, b: SysctlPlan) -> SysctlPlan:
    """``b`` over ``a`` (later remediations win, key by key)."""
    return SysctlPlan(
        conntrack_max=b.conntrack_max if b.conntrack_max is not None else a.conntrack_max,
        buckets=b.buckets if b.buckets is not None else a.buckets,
        per_node=tuple({**dict(a.per_node), **dict(b.per_node)}.items()),
    )
