"""One meaning of a phase for every backend: :func:`plan_phase` turns (Scenario, Phase) into a
typed, frozen :class:`PhasePlan` (:mod:`.types`) that backends only realize."""

from harness.plan.phase import plan_phase, plan_run
from harness.plan.types import PhasePlan, RunPlan

__all__ = ["PhasePlan", "RunPlan", "plan_phase", "plan_run"]
