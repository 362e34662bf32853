"""The plan each client pod's load worker (``python -m loadgen.worker``) runs. Pure.

It is the netns backend's worker contract, unchanged (``loadgen/worker.py``: a plan file in, a
result file out, with ``dns.pods``/``dns.plan`` and ``http.targets``/``http.plan``), with two
differences that come from running inside the pod:

- each pod runs its own worker with a one-pod plan: ``netns`` is ``None`` ("this process's own
  namespace", as ``loadgen.http.plan.HTTPTarget`` documents it);
- the pod's ``resolv`` is the ``/etc/resolv.conf`` kubelet wrote into that pod, read back from
  it, so the resolver model uses exactly what a real client in the pod would.

The phase's rates (and HTTP ``max_in_flight``) are split evenly over the client pods; the
runner merges the pods' answers (:mod:`.loadmerge`). Names are translated into the run's
namespace, and made absolute under the FQDN remediation. The HTTP load goes to the http-server
Service's ClusterIP, so it adds no DNS lookups of its own (as on netns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.backends.kube.dnsconfig import NamespaceMap, uses_fqdn
from harness.backends.kube.workload import HTTP_PORT
from harness.scenario.model import Phase, Pooling, Scenario

# Runs the worker on a plan from stdin; only its result reaches stdout (its own output -> stderr).
POD_WORKER_SCRIPT = (
    'd=$(mktemp -d) && cat > "$d/plan.json" && '
    'python3 -m loadgen.worker --plan "$d/plan.json" --out "$d/out.json" 1>&2 && '
    'cat "$d/out.json"'
)


@dataclass(frozen=True)
class ClientTarget:
    """One Ready client pod: its name, its IP, and its resolv.conf as kubelet wrote it."""

    pod: str
    ip: str
    resolv: str


def pod_worker_argv() -> list[str]:
    return ["/bin/sh", "-c", POD_WORKER_SCRIPT]


def worker_plans(
    scenario: Scenario,
    phase: Phase,
    nsmap: NamespaceMap,
    clients: list[ClientTarget],
    http_ip: str,
) -> list[dict[str, Any]]:
    """One plan per client pod (in ``clients`` order)."""
    load = scenario.phase_load(phase)
    n = len(clients)
    if n == 0:
        return []
    http_plan: dict[str, Any] | None = None
    if load.http is not None:
        http = load.http.model_dump()
        for rem in phase.remediations:
            if isinstance(rem, Pooling):
                http.update(mode="pooled", pool_size=rem.pool_size)
        http.update(
            rate=load.http.rate / n,
            max_in_flight=max(1, load.http.max_in_flight // n),
            duration_s=load.duration_s,
        )
        http_plan = http
    dns_plan: dict[str, Any] | None = None
    if load.dns is not None:
        external = list(scenario.cluster.external_names)
        if uses_fqdn(phase):
            names = [nsmap.fqdn(x, external) for x in load.dns.names]
        else:
            names = [nsmap.name(x) for x in load.dns.names]
        dns_plan = {
            **load.dns.model_dump(),
            "names": names,
            "rate": load.dns.rate / n,
            "duration_s": load.duration_s,
        }
    plans: list[dict[str, Any]] = []
    for c in clients:
        plan: dict[str, Any] = {"duration_s": load.duration_s, "phase": phase.name, "pod": c.pod}
        if dns_plan is not None:
            plan["dns"] = {
                "pods": [{"netns": None, "ip": c.ip, "resolv": c.resolv}],
                "plan": dict(dns_plan),
            }
        if http_plan is not None:
            plan["http"] = {
                "targets": [{"netns": None, "ip": http_ip, "port": HTTP_PORT}],
                "plan": dict(http_plan),
            }
        plans.append(plan)
    return plans


def client_image(scenario: Scenario, phase: Phase, glibc: str, musl: str) -> str:
    """musl's resolver is measured in an Alpine image; everything else runs on glibc."""
    load = scenario.phase_load(phase)
    return musl if load.dns is not None and load.dns.resolver == "musl" else glibc
