"""One meaning of a phase for every backend: :func:`harness.plan.phase.plan_run` turns a
Scenario into a typed, frozen :class:`RunPlan` of :class:`PhasePlan` (:mod:`.types`) that
backends only realize. Importing this package (or :mod:`.types`) does not import the scenario
language: the scenario package imports these types, and only :mod:`.phase` (and the planning
modules it uses) read a Scenario."""

from harness.plan.types import PhasePlan, RunPlan

__all__ = ["PhasePlan", "RunPlan"]
