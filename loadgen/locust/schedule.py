"""Load schedules as pure functions of elapsed time: (users, spawn_rate), or None to stop.

``loadgen.locust.shapes`` wraps them in Locust ``LoadTestShape`` classes; kept here, apart
from Locust, so they are tested without importing it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from cthcommon.errors import BadInput

Tick = tuple[int, float] | None


def _positive(field: str, value: float, *, allow_zero: bool = False) -> None:
    ok = math.isfinite(value) and (value >= 0 if allow_zero else value > 0)
    if not ok:
        raise BadInput(field=field, value=value, allowed=">= 0" if allow_zero else "> 0")


@dataclass(frozen=True)
class BurstIdle:
    """``cycles`` times: ``users`` users for ``burst_s``, then none for ``idle_s``."""

    users: int
    burst_s: float
    idle_s: float
    cycles: int = 1
    spawn_rate: float = 1000.0
    kind: Literal["burst-idle"] = "burst-idle"

    def __post_init__(self) -> None:
        if self.users < 1:
            raise BadInput(field="shape.users", value=self.users, allowed=">= 1")
        if self.cycles < 1:
            raise BadInput(field="shape.cycles", value=self.cycles, allowed=">= 1")
        _positive("shape.burst_s", self.burst_s)
        _positive("shape.idle_s", self.idle_s, allow_zero=True)
        _positive("shape.spawn_rate", self.spawn_rate)

    @property
    def total_s(self) -> float:
        return self.cycles * (self.burst_s + self.idle_s)

    def at(self, t: float) -> Tick:
        if t < 0 or t >= self.total_s:
            return None
        in_cycle = math.fmod(t, self.burst_s + self.idle_s)
        return (self.users if in_cycle < self.burst_s else 0, self.spawn_rate)


@dataclass(frozen=True)
class Ramp:
    """From ``start_users`` to ``end_users`` over ``ramp_s`` in steps of ``step_s``, then
    hold ``end_users`` for ``hold_s``. Ramps down too when ``end_users < start_users``."""

    start_users: int
    end_users: int
    ramp_s: float
    hold_s: float = 0.0
    step_s: float = 1.0
    spawn_rate: float = 1000.0
    kind: Literal["ramp"] = "ramp"

    def __post_init__(self) -> None:
        if self.start_users < 0 or self.end_users < 0:
            raise BadInput(
                field="shape.start_users/end_users",
                value=(self.start_users, self.end_users),
                allowed=">= 0",
            )
        _positive("shape.ramp_s", self.ramp_s)
        _positive("shape.hold_s", self.hold_s, allow_zero=True)
        _positive("shape.step_s", self.step_s)
        _positive("shape.spawn_rate", self.spawn_rate)

    @property
    def total_s(self) -> float:
        return self.ramp_s + self.hold_s

    def at(self, t: float) -> Tick:
        if t < 0 or t >= self.total_s:
            return None
        if t >= self.ramp_s:
            return (self.end_users, self.spawn_rate)
        stepped = math.floor(t / self.step_s + 1e-9) * self.step_s
        frac = min(1.0, stepped / self.ramp_s)
        users = round(self.start_users + (self.end_users - self.start_users) * frac)
        return (users, self.spawn_rate)


Schedule = BurstIdle | Ramp


def ticks(schedule: Schedule, every_s: float) -> list[tuple[float, Tick]]:
    """The schedule sampled every ``every_s`` seconds, up to and including its first None."""
    _positive("every_s", every_s)
    out: list[tuple[float, Tick]] = []
    k = 0
    while True:
        t = round(k * every_s, 9)
        tick = schedule.at(t)
        out.append((t, tick))
        if tick is None:
            return out
        k += 1


def schedule_from_dict(spec: dict[str, Any]) -> Schedule:
    """Parse ``{"kind": "burst-idle" | "ramp", ...}`` (the plan JSON's ``shape``)."""
    body = dict(spec)
    kind = body.pop("kind", None)
    classes: dict[str, type[BurstIdle] | type[Ramp]] = {"burst-idle": BurstIdle, "ramp": Ramp}
    if kind not in classes:
        raise BadInput(field="shape.kind", value=kind, allowed=sorted(classes))
    try:
        return classes[kind](**body)
    except TypeError as e:
        raise BadInput(str(e), field="shape", value=spec) from None
