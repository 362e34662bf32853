"""The DNS load engine: paced lookups from many pods, concurrently, through resolver models.

Lookup *i* starts at the *i*-th offset of the plan's load shape (:mod:`.pacing`), from pod
``i mod len(pods)``, for name ``names[(i // len(pods)) mod len(names)]``. Each pod runs a
succession of client "processes" (fresh resolver-model objects), each doing
``lookups_per_process`` lookups, so per-process resolver state (glibc's sticky fallback to
sequential queries) lives exactly as long as it would in the workload being modelled.

A counter bounds lookups in flight (``plan.max_in_flight``, like a semaphore); when it is
full the pacer waits, and the lag shows in the records' ``t_start``. A late pacer catches up
at most ``_BURST`` lookups per loop turn rather than in one burst. When the duration is over
no new lookup starts; with ``plan.drain == "full"`` the ones in flight are allowed to finish,
with ``"first-timeout"`` the run ends as soon as every lookup still in flight has waited one
full resolver timeout, and those are recorded as ``unfinished`` (see :data:`~.types.Drain`).

The loop itself is :class:`~loadgen.dns.fastloop.FastLoop` (epoll + deadline timers driving
the model coroutines), run in a thread so the caller's asyncio loop stays free. With
``plan.workers > 1`` it runs in that many worker processes instead (``python -m
loadgen.dns.worker_main``: the job as JSON in, the records as rows out), each taking every
``workers``-th lookup of the same schedule, all started together on the wall clock.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import marshal
import resource
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any

from cthcommon.errors import BackendError
from loadgen.dns.codec import plan_to_json, pod_to_json, record_from_row
from loadgen.dns.fastloop import FastLoop, FastTransport
from loadgen.dns.lookup import recorded_lookup, unfinished
from loadgen.dns.models import MODELS, make_resolver
from loadgen.dns.models.base import Recorder, ResolverModel
from loadgen.dns.pacing import expected_count, start_offsets
from loadgen.dns.types import ClientPod, DNSPlan, LookupRecord

Progress = Callable[[int, int], None]
_IDLE_WAIT = 0.05
_BURST = 32


@dataclass
class _Process:
    model: ResolverModel
    used: int = 0


@dataclass(slots=True)
class _InFlight:
    """What the engine keeps of a lookup in flight, to give up on it (drain first-timeout)."""

    coro: Coroutine[Any, Any, LookupRecord]
    rec: Recorder
    model: ResolverModel
    name: str
    pod: str
    t_start: float


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
        from cthcommon.errors import BadInput

        raise BadInput("at least one client pod is needed", field="pods", value=pods)
    if plan.workers > 1:
        return await _run_workers(pods, plan, progress)
    report = progress
    if progress is not None:
        caller = asyncio.get_running_loop()

        def report(done: int, total: int) -> None:
            caller.call_soon_threadsafe(progress, done, total)

    return await asyncio.to_thread(_run_fast, pods, plan, report, start_at=None, stride=(0, 1))


def _run_fast(
    pods: list[ClientPod],
    plan: DNSPlan,
    progress: Progress | None,
    *,
    start_at: float | None,
    stride: tuple[int, int],
) -> list[LookupRecord]:
    """The engine proper (blocking): lookups ``i`` with ``i % stride[1] == stride[0]``."""
    _raise_nofile(4 * plan.max_in_flight + 256)
    loop = FastLoop()
    transports = {p.netns: FastTransport(p.netns, loop) for p in pods}
    procs = [_Process(make_resolver(plan.resolver, p.resolv, plan.family)) for p in pods]
    new_model = MODELS[plan.resolver]  # validated just above
    family = plan.family
    records: list[LookupRecord] = []
    first, step = stride
    total = expected_count(plan)
    names, npods, cap = plan.names, len(pods), plan.max_in_flight
    nnames, per_process, spawn = len(names), plan.lookups_per_process, loop.spawn
    pod_tr = [transports[p.netns] for p in pods]
    labels = [p.label for p in pods]
    in_flight = 0
    cut = plan.drain == "first-timeout"
    live: dict[int, _InFlight] = {}  # only with cut: the lookups in flight, by sequence number
    timeout_s = {p.label: float(p.resolv.timeout) for p in pods}  # f.pod is the label

    def waited_out(f: _InFlight) -> bool:
        """In flight for at least its pod's resolver timeout (so a timeout already)."""
        return f.rec.full_timeout_waits > 0 and loop.now() - t0 - f.t_start >= timeout_s[f.pod]

    def done(rec: LookupRecord) -> None:
        nonlocal in_flight
        in_flight -= 1
        records.append(rec)

    def done_seq(seq: int) -> Callable[[LookupRecord], None]:
        def finish(rec: LookupRecord) -> None:
            del live[seq]
            done(rec)

        return finish

    todo = itertools.islice(enumerate(start_offsets(plan)), first, None, step)
    nxt = next(todo, None)
    if start_at is not None:  # workers start together, on the wall clock
        time.sleep(max(0.0, start_at - time.time()))
    # No cyclic garbage collection while the load runs: every lookup allocates a few dozen
    # objects, which triggers a collection every few hundred lookups, each walking all the
    # records kept so far. Lookups make no cycles that outlive them (their sockets are
    # closed and their coroutines finish); whatever is left is collected once, at the end.
    gc_was_on = gc.isenabled()
    gc.disable()
    t0 = loop.now()
    next_progress = 0.0
    try:
        while True:
            now = loop.now() - t0
            # Never dump a backlog at once: a late engine catches up at most _BURST lookups
            # per turn, so its lag shows in t_start instead of as a burst the server drops.
            started = 0
            while nxt is not None and nxt[1] <= now and in_flight < cap and started < _BURST:
                started += 1
                i = nxt[0]
                # Round-robin over pods, and over names once per full round of pods.
                pi = i % npods
                proc = procs[pi]
                if proc.used >= per_process:
                    proc = procs[pi] = _Process(new_model(pods[pi].resolv, family))
                proc.used += 1
                in_flight += 1
                name = names[(i // npods) % nnames]
                tr, label = pod_tr[pi], labels[pi]
                if not cut:
                    spawn(recorded_lookup(proc.model, name, tr, pod=label, t_start=now), done)
                else:
                    rec = Recorder(tr)
                    coro = recorded_lookup(
                        proc.model, name, tr, pod=label, t_start=now, recorder=rec
                    )
                    live[i] = _InFlight(coro, rec, proc.model, name, label, now)
                    spawn(coro, done_seq(i))
                nxt = next(todo, None)
            if nxt is None and in_flight == 0:
                break
            if cut and nxt is None and all(waited_out(f) for f in live.values()):
                # Every lookup has started, and each one still waiting has already waited a
                # full timeout: it counts as a timeout whatever comes next. Record it as
                # unfinished rather than wait (up to timeout * attempts per candidate) more.
                # (A wait for one of musl's resends, every timeout/attempts, is not enough.)
                for f in live.values():
                    f.coro.close()  # runs the model's finally: its sockets are closed
                    records.append(unfinished(f.model, f.name, f.rec, pod=f.pod, t_start=f.t_start))
                live.clear()
                in_flight = 0
                break
            wait = _IDLE_WAIT
            if nxt is not None and in_flight < cap:
                wait = min(wait, max(0.0, nxt[1] - (loop.now() - t0)))
            loop.run_once(wait)
            if progress is not None and now >= next_progress:
                progress(len(records), total)
                next_progress = now + 1.0
    finally:
        for tr in transports.values():
            tr.close_pool()
        loop.close()
        if gc_was_on:
            gc.enable()
    if progress is not None:
        progress(len(records), total)
    records.sort(key=lambda r: r.t_start)
    return records


async def _run_workers(
    pods: list[ClientPod], plan: DNSPlan, progress: Progress | None
) -> list[LookupRecord]:
    n = plan.workers
    sub = replace(plan, workers=1, max_in_flight=max(1, plan.max_in_flight // n))
    start_at = time.time() + 1.5  # time for the workers to start and import
    job = {"pods": [pod_to_json(p) for p in pods], "plan": plan_to_json(sub), "start_at": start_at}
    procs = []
    for _ in range(n):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "loadgen.dns.worker_main",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        procs.append(proc)
    try:
        outs = await asyncio.gather(
            *(
                p.communicate(json.dumps({**job, "stride": [k, n]}).encode())
                for k, p in enumerate(procs)
            )
        )
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
    records: list[LookupRecord] = []
    for p, (_out, err) in zip(procs, outs, strict=True):
        if p.returncode != 0:
            raise BackendError(f"DNS load worker failed ({p.returncode}): {err.decode()[-2000:]}")
    gc_was_on = gc.isenabled()
    gc.disable()  # tens of thousands of new records: no collection pass over them meanwhile
    try:
        for out, _err in outs:
            records.extend(record_from_row(row) for row in marshal.loads(out))
    finally:
        if gc_was_on:
            gc.enable()
    records.sort(key=lambda r: r.t_start)  # all t_start count from the common start
    if progress is not None:
        progress(len(records), expected_count(plan))
    return records
