"""The JSON plan each client pod's load worker (``python -m loadgen.worker``) reads on stdin.

Pure. The backend splits the phase's load evenly over the client pods, translates names into the
run's namespace (and to absolute FQDNs under the FQDN remediation), and points the HTTP load at
the run's http-server Service. The worker answers with one JSON object on stdout (see
loadgen/docker/README.md); the runner aggregates the pods' answers into result.json.
"""

from __future__ import annotations

from typing import Literal, TypedDict

from harness.backends.kube.dnsconfig import NamespaceMap, uses_fqdn
from harness.backends.kube.names import HTTP_SERVER_NAME, client_pod_name
from harness.backends.kube.workload import HTTP_PORT
from harness.scenario.model import Phase, Pooling, Scenario

PLAN_SCHEMA = 1


class HTTPPlan(TypedDict):
    url: str
    mode: Literal["short-lived", "server-close", "pooled"]
    rate: float
    pool_size: int
    connect_timeout_s: float
    max_in_flight: int


class DNSPlan(TypedDict):
    names: list[str]
    resolver: str
    rate: float
    lookups_per_process: int
    resolv_conf: str


class WorkerPlan(TypedDict):
    schema: int
    run_id: str
    phase: str
    pod: str
    duration_s: float
    injected: bool
    http: HTTPPlan | None
    dns: DNSPlan | None


def worker_plans(
    scenario: Scenario, phase: Phase, run_id: str, nsmap: NamespaceMap
) -> list[WorkerPlan]:
    load = scenario.phase_load(phase)
    pods = scenario.cluster.client_pods
    http: HTTPPlan | None = None
    if load.http is not None:
        mode = load.http.mode
        pool = load.http.pool_size
        for rem in phase.remediations:
            if isinstance(rem, Pooling):
                mode, pool = "pooled", rem.pool_size
        http = {
            "url": f"http://{HTTP_SERVER_NAME}.{nsmap.run_ns}.svc.{nsmap.domain}:{HTTP_PORT}/",
            "mode": mode,
            "rate": load.http.rate / pods,
            "pool_size": pool,
            "connect_timeout_s": load.http.connect_timeout_s,
            "max_in_flight": max(1, load.http.max_in_flight // pods),
        }
    dns: DNSPlan | None = None
    if load.dns is not None:
        external = list(scenario.cluster.external_names)
        if uses_fqdn(phase):
            names = [nsmap.fqdn(n, external) for n in load.dns.names]
        else:
            names = [nsmap.name(n) for n in load.dns.names]
        dns = {
            "names": names,
            "resolver": load.dns.resolver,
            "rate": load.dns.rate / pods,
            "lookups_per_process": load.dns.lookups_per_process,
            "resolv_conf": "/etc/resolv.conf",
        }
    return [
        {
            "schema": PLAN_SCHEMA,
            "run_id": run_id,
            "phase": phase.name,
            "pod": client_pod_name(i),
            "duration_s": load.duration_s,
            "injected": phase.injected,
            "http": http,
            "dns": dns,
        }
        for i in range(pods)
    ]


def client_image(scenario: Scenario, phase: Phase, glibc: str, musl: str) -> str:
    """musl's resolver is measured in an Alpine image; everything else runs on glibc."""
    load = scenario.phase_load(phase)
    return musl if load.dns is not None and load.dns.resolver == "musl" else glibc
