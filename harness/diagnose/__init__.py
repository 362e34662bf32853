"""Name the cause of DNS timeouts: from a finished run's result.json or from a live host/node."""

from harness.diagnose.classify import Diagnosis, Signals, classify, diagnose_phase

__all__ = ["Diagnosis", "Signals", "classify", "diagnose_phase"]
