"""The DNS load engine: paced lookups from many pods, concurrently, through resolver models.

Lookup *i* starts at the *i*-th offset of the plan's load shape (:mod:`.pacing`), from pod
``i mod len(pods)``, for name ``names[(i // len(pods)) mod len(names)]``. Each pod runs a
succession of client "processes" (fresh resolver-model objects), each doing
``lookups_per_process`` lookups, so per-process resolver state (glibc's sticky fallback to
sequential queries) lives exactly as long as it would in the workload being modelled.

A semaphore bounds lookups in flight (``plan.max_in_flight``); when it is full the pacer waits,
and the lag shows in the records' ``t_start``. When the duration is over no new lookup starts
and the ones in flight are allowed to finish.

With ``plan.workers > 1`` the same loop runs in that many worker processes (each with an equal
share of the rate, and its own share of the pods when there are enough), started together.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

from loadgen.dns.lookup import recorded_lookup
from loadgen.dns.models import make_resolver
from loadgen.dns.models.base import ResolverModel
from loadgen.dns.pacing import expected_count, start_offsets
from loadgen.dns.transport import AsyncioTransport
from loadgen.dns.types import ClientPod, DNSPlan, LookupRecord

Progress = Callable[[int, int], None]
_MIN_SLEEP = 0.0005


@dataclass
class _Process:
    model: ResolverModel
    used: int = 0


def _raise_nofile(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(hard, max(soft, want))
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


async def run_dns_load(
    pods: list[ClientPod], plan: DNSPlan, *, progress: Progress | None = None
) -> list[LookupRecord]:
    """Offer ``plan`` from ``pods``; one :class:`LookupRecord` per lookup started, by start."""
    if not pods:
        from harness.errors import BadInput

        raise BadInput("at least one client pod is needed", field="pods", value=pods)
    if plan.workers > 1:
        return await _run_workers(pods, plan, progress)
    return await _run_here(pods, plan, progress, start_at=None, stride=(0, 1))


async def _run_here(
    pods: list[ClientPod],
    plan: DNSPlan,
    progress: Progress | None,
    *,
    start_at: float | None,
    stride: tuple[int, int],
) -> list[LookupRecord]:
    loop = asyncio.get_running_loop()
    _raise_nofile(4 * plan.max_in_flight + 256)
    transports = {p.netns: AsyncioTransport(p.netns, loop=loop) for p in pods}
    procs = [_Process(make_resolver(plan.resolver, p.resolv)) for p in pods]
    sem = asyncio.Semaphore(plan.max_in_flight)
    records: list[LookupRecord] = []
    tasks: set[asyncio.Task[None]] = set()
    first, step = stride
    total = expected_count(plan)
    names, npods = plan.names, len(pods)

    async def one(pi: int, name: str, model: ResolverModel, t_start: float) -> None:
        try:
            rec = await recorded_lookup(model, name, transports[pods[pi].netns],
                                        pod=pods[pi].netns, t_start=t_start)
            records.append(rec)
        finally:
            sem.release()

    if start_at is not None:  # workers start together, on the wall clock
        await asyncio.sleep(max(0.0, start_at - time.time()))
    t0 = loop.time()
    next_progress = 0.0
    try:
        for i, off in enumerate(start_offsets(plan)):
            if i % step != first:
                continue
            now = loop.time() - t0
            if off - now > _MIN_SLEEP:
                await asyncio.sleep(off - now)
            await sem.acquire()
            # Round-robin over pods, and over names once per full round of pods.
            pi = i % npods
            proc = procs[pi]
            if proc.used >= plan.lookups_per_process:
                proc = procs[pi] = _Process(make_resolver(plan.resolver, pods[pi].resolv))
            proc.used += 1
            task = loop.create_task(
                one(pi, names[(i // npods) % len(names)], proc.model, loop.time() - t0)
            )
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if progress is not None and now >= next_progress:
                progress(len(records), total)
                next_progress = now + 1.0
        while tasks:
            await asyncio.gather(*list(tasks))
    finally:
        for tr in transports.values():
            tr.close_pool()
    if progress is not None:
        progress(len(records), total)
    records.sort(key=lambda r: r.t_start)
    return records


def _worker(pods: list[ClientPod], plan: DNSPlan, start_at: float, stride: tuple[int, int]
            ) -> list[LookupRecord]:
    return asyncio.run(_run_here(pods, plan, None, start_at=start_at, stride=stride))


async def _run_workers(
    pods: list[ClientPod], plan: DNSPlan, progress: Progress | None
) -> list[LookupRecord]:
    n = plan.workers
    loop = asyncio.get_running_loop()
    ctx = multiprocessing.get_context("spawn")
    sub = replace(plan, workers=1, max_in_flight=max(1, plan.max_in_flight // n))
    start_at = time.time() + 1.0 + 0.3 * n  # time for the spawned workers to import
    with ProcessPoolExecutor(max_workers=n, mp_context=ctx) as pool:
        futs = [
            loop.run_in_executor(pool, _worker, pods, sub, start_at, (k, n)) for k in range(n)
        ]
        parts = await asyncio.gather(*futs)
    records = [r for part in parts for r in part]  # all t_start count from the common start
    records.sort(key=lambda r: r.t_start)
    if progress is not None:
        progress(len(records), expected_count(plan))
    return records
