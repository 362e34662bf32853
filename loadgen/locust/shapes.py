"""Locust load shapes for bursty patterns. Imports Locust: subprocess only.

The arithmetic is in :mod:`loadgen.locust.schedule`; these classes only read the clock.
"""

from __future__ import annotations

from locust import LoadTestShape

from loadgen.locust.schedule import BurstIdle, Ramp, Schedule, Tick


class _ScheduleShape(LoadTestShape):
    abstract = True

    def __init__(self, schedule: Schedule) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.schedule = schedule

    def tick(self) -> Tick:
        elapsed: float = self.get_run_time()  # type: ignore[no-untyped-call]
        return self.schedule.at(elapsed)


class BurstIdleShape(_ScheduleShape):
    """``users`` users for ``burst_s``, none for ``idle_s``, ``cycles`` times."""

    def __init__(self, schedule: BurstIdle) -> None:
        super().__init__(schedule)


class RampShape(_ScheduleShape):
    """A stepped ramp from ``start_users`` to ``end_users``, then a hold."""

    def __init__(self, schedule: Ramp) -> None:
        super().__init__(schedule)


def shape_for(schedule: Schedule | None) -> LoadTestShape | None:
    if schedule is None:
        return None
    if isinstance(schedule, BurstIdle):
        return BurstIdleShape(schedule)
    return RampShape(schedule)
