"""LocustLoadPlan -> LocustWork: a locustfile spread over the client pods (pure).

One Locust worker process in each client pod's namespace (never more workers than users),
the master in the first pod's, reached by the workers at that pod's IP. With one client
pod, Locust runs as one process in it. Every user aims at ``target`` (Locust's ``--host``).
"""

from __future__ import annotations

from collections.abc import Sequence

from cthcommon.errors import BadInput
from harness.plan.types import LocustLoadPlan
from loadgen.locust.userplan import LocustfilePlan
from loadgen.worker import LocustWork, PodSpec

HTTP_PORT = 80


def locust_work(
    plan: LocustLoadPlan, duration_s: float, pods: Sequence[PodSpec], target: str
) -> LocustWork:
    if not pods:
        raise BadInput("a locustfile load needs at least one client pod", field="client_pods")
    netns = [p.netns for p in pods]
    if any(ns is None for ns in netns):
        raise BadInput(
            "this backend cannot run a locustfile yet (netns only)", field="load.http.locustfile"
        )
    spread = [ns for ns in netns if ns is not None][: plan.users]
    workers = len(spread) if len(spread) > 1 else 0
    return LocustWork(
        plan=LocustfilePlan(
            locustfile=plan.locustfile,
            host=target,
            port=HTTP_PORT,
            users=plan.users,
            spawn_rate=plan.spawn_rate,
            duration_s=duration_s,
            user_classes=plan.user_classes,
            workers=workers,
            worker_netns=tuple(spread) if workers else (),
            master_host=pods[0].ip if workers else None,
        ),
        netns=spread[0],
    )
