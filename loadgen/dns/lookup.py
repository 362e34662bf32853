"""One lookup through a resolver model, recorded as a :class:`LookupRecord`."""

from __future__ import annotations

from loadgen.dns.models.base import (
    STATUS_OUTCOME,
    Recorder,
    ResolverModel,
    Transport,
    TransportError,
)
from loadgen.dns.types import LookupRecord, Outcome


async def recorded_lookup(
    model: ResolverModel,
    name: str,
    transport: Transport,
    *,
    pod: str = "",
    t_start: float = 0.0,
    recorder: Recorder | None = None,
) -> LookupRecord:
    """Run ``model.lookup(name)`` on ``transport`` and record every query it sent.

    Socket-level failures (``OSError``, ``TransportError``) end the lookup as ``error``.
    ``t_start`` is the caller's time stamp for the record (e.g. seconds since the run began).
    A caller that may give up on the lookup passes its own ``recorder`` (made on
    ``transport``), to build the record of what was sent so far with :func:`unfinished`.
    """
    rec = recorder if recorder is not None else Recorder(transport)
    error: str | None = None
    try:
        outcome = STATUS_OUTCOME[await model.lookup(name, rec)]
    except (OSError, TransportError) as e:
        outcome, error = "error", f"{type(e).__name__}: {e}"
    return _record(model, name, rec, outcome, pod=pod, t_start=t_start, error=error)


def unfinished(
    model: ResolverModel, name: str, rec: Recorder, *, pod: str = "", t_start: float = 0.0
) -> LookupRecord:
    """The record of a lookup given up while it was still waiting (outcome ``unfinished``)."""
    return _record(model, name, rec, "unfinished", pod=pod, t_start=t_start)


def _record(
    model: ResolverModel,
    name: str,
    rec: Recorder,
    outcome: Outcome,
    *,
    pod: str,
    t_start: float,
    error: str | None = None,
) -> LookupRecord:
    """What the recorder saw of one lookup, as a record."""
    return LookupRecord(
        t_start=t_start,
        pod=pod,
        name=name,
        outcome=outcome,
        latency_s=rec.now() - rec.t0,
        queries_sent=len(rec.attempts),
        replies_received=rec.replies,
        source_ports=rec.ports,
        retries=rec.retries,
        full_timeout_waits=rec.full_timeout_waits,
        attempts=rec.attempts,
        resolver=model.name,
        error=error,
    )
