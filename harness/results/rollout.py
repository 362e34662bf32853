"""A CoreDNS rollout's place in a phase's result (pure): its steps on the load's clock, and
the lookups that started while it ran (until its last old replica was gone)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypedDict

SERVER_COUNTS = "nft counters in each CoreDNS pod's namespace"


class RolloutEvent(TypedDict):
    t_s: float  # seconds since the load started
    event: str  # start | ready | deleted | exited | killed
    pod: str
    ip: str


class RolloutWindow(TypedDict):
    from_s: int  # whole seconds of the DNS timeline, inclusive
    to_s: int
    lookups: int
    timeouts: int
    timeout_rate: float


class RolloutResult(TypedDict):
    at_s: float  # as planned: after the load generator started
    started_s: float | None  # when the first new pod was started (None: never began)
    finished_s: float | None  # when the last old replica was gone
    outlasted_load: bool  # the rollout was still going when the load ended
    events: list[RolloutEvent]
    window: RolloutWindow
    # where the phase's server received/answered came from: replicas come and go with their
    # metrics, so the CoreDNS pods' own nft counters (queries in, answers out)
    server_counts: str


def rollout_result(
    at_s: float,
    events: Sequence[tuple[float, str, str, str]],
    *,
    load_start: float,
    load_s: float,
    timeline: Sequence[Sequence[float]],
) -> RolloutResult:
    """``events``: ``(monotonic, event, pod, ip)``; ``load_start``: the load's start on the
    same clock; ``timeline``: the DNS result's ``[second, lookups, timeouts]`` rows."""
    evs: list[RolloutEvent] = [
        {"t_s": round(t - load_start, 3), "event": e, "pod": pod, "ip": ip}
        for t, e, pod, ip in events
    ]
    started = evs[0]["t_s"] if evs else None
    gone = [e["t_s"] for e in evs if e["event"] in ("exited", "killed")]
    finished = max(gone) if gone and started is not None else None
    lo = math.floor(started) if started is not None else 0
    hi = math.ceil(finished) if finished is not None else math.ceil(load_s)
    rows = [r for r in timeline if started is not None and lo <= r[0] <= hi]
    lookups = int(sum(r[1] for r in rows))
    timeouts = int(sum(r[2] for r in rows))
    return {
        "at_s": at_s,
        "started_s": started,
        "finished_s": finished,
        "outlasted_load": finished is None or finished > load_s,
        "events": evs,
        "server_counts": SERVER_COUNTS,
        "window": {
            "from_s": lo,
            "to_s": hi,
            "lookups": lookups,
            "timeouts": timeouts,
            "timeout_rate": round(timeouts / lookups, 6) if lookups else 0.0,
        },
    }


def describe(r: RolloutResult) -> str:
    """One sentence for reports: what the rollout did and what the lookups saw (pure)."""
    if r["started_s"] is None:
        return f"CoreDNS rollout planned at {r['at_s']:g} s never began (the load ended first)."
    w = r["window"]
    steps = ", ".join(
        f"{e['event']} {e['pod']} ({e['ip']}) at {e['t_s']:.1f} s" for e in r["events"]
    )
    end = (
        f"ended {r['finished_s']:.1f} s"
        if r["finished_s"] is not None
        else "had not ended when the load did"
    )
    tail = " It outlasted the load." if r["outlasted_load"] and r["finished_s"] is not None else ""
    return (
        f"CoreDNS rollout: began {r['started_s']:.1f} s into the load and {end}; "
        f"{w['timeouts']} of {w['lookups']} lookups started in seconds {w['from_s']}-{w['to_s']} "
        f"timed out ({w['timeout_rate']:.2%}).{tail} Steps: {steps}. Server counts: "
        f"{r['server_counts']}."
    )
