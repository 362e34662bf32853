"""The plan each client pod's load worker (``python -m loadgen.worker``) runs. Pure.

It is the netns backend's worker contract (:class:`loadgen.worker.WorkerPlan`, built from the
phase plan by :func:`harness.plan.workerplan.worker_plan`: a plan in, a result out), with two
differences that come from running inside the pod:

- each pod runs its own worker with a one-pod plan: ``netns`` is ``None`` ("this process's own
  namespace", as ``loadgen.http.plan.HTTPTarget`` documents it);
- the pod's ``resolv`` is the ``/etc/resolv.conf`` kubelet wrote into that pod, read back from
  it, so the resolver model uses exactly what a real client in the pod would.

The phase's rates (and HTTP ``max_in_flight``) are split evenly over the client pods; the
runner merges the pods' answers (:mod:`.loadmerge`). Names (already absolute under the FQDN
remediation, in the phase plan) are translated into the run's namespace. The HTTP load goes to
the http-server Service's ClusterIP, so it adds no DNS lookups of its own (as on netns).
"""

from __future__ import annotations

from dataclasses import dataclass

from cthcommon.errors import BadInput
from harness.backends.kube.dnsconfig import NamespaceMap
from harness.backends.kube.workload import HTTP_PORT
from harness.plan.types import PhasePlan
from harness.plan.workerplan import worker_plan
from loadgen.http.plan import HTTPTarget
from loadgen.worker import PodSpec, WorkerPlan

# Runs the worker on a plan from stdin (one line), started on cue (the next line,
# :mod:`.podworker`); stdout carries its ``ready`` and then its result only (its own output
# goes to stderr).
POD_WORKER_SCRIPT = (
    'd=$(mktemp -d) && python3 -m loadgen.worker --plan - --out "$d/out.json" --cue 3>&1 1>&2 '
    '&& cat "$d/out.json"'
)


@dataclass(frozen=True)
class ClientTarget:
    """One Ready client pod: its name, its IP, and its resolv.conf as kubelet wrote it."""

    pod: str
    ip: str
    resolv: str


def pod_worker_argv(cpus: str | None = None) -> list[str]:
    """The worker in a pod; with ``cpus``, pinned there (``taskset -c``)."""
    if cpus is None:
        return ["/bin/sh", "-c", POD_WORKER_SCRIPT]
    if not all(part.isdigit() for part in cpus.replace("-", ",").split(",")):
        raise BadInput("a CPU list like 1 or 0-1,3", field="cpus", value=cpus)
    pinned = POD_WORKER_SCRIPT.replace("python3 -m", f"taskset -c {cpus} python3 -m")
    return ["/bin/sh", "-c", pinned]


def worker_plans(
    plan: PhasePlan,
    nsmap: NamespaceMap,
    clients: list[ClientTarget],
    http_ip: str,
) -> list[WorkerPlan]:
    """One plan per client pod (in ``clients`` order)."""
    n = len(clients)
    return [
        worker_plan(
            plan,
            [PodSpec(None, c.ip, c.resolv)],
            [HTTPTarget(address=http_ip, port=HTTP_PORT, netns=None)],
            share=(i, n),
            pod=c.pod,
            map_name=nsmap.name,
        )
        for i, c in enumerate(clients)
    ]


def client_image(plan: PhasePlan, glibc: str, musl: str) -> str:
    """musl's resolver is measured in an Alpine image; everything else runs on glibc."""
    dns = plan.load.dns
    return musl if dns is not None and dns.resolver == "musl" else glibc
