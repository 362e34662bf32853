"""Scenario files: the YAML language, its schema, and loading with precise errors."""

from harness.scenario.loader import load_scenario, parse_scenario
from harness.scenario.model import Phase, Scenario

__all__ = ["Phase", "Scenario", "load_scenario", "parse_scenario"]
