"""The judging: one pure layer under both results and reports (issue 18 item 6).

Everything that decides what a measurement means is here, and reads only result.json's typed
phases: nothing here measures, drives a backend, or formats a report.

- :mod:`.gate`: a phase's verdict and the run's (exit 0, 1, 6), and the rule that a phase
  outside its load's steady state supports no before/after conclusion;
- :mod:`.summary`: phases pooled over repeats, and each remediation against its baseline;
- :mod:`.compare`: result.json's ``comparisons`` from those;
- :mod:`.diagnosis`: the cause a phase's signals name (exhaustion, the race, CoreDNS, ...);
- :mod:`.alerts`: seed 000's ``ConntrackTableNearFull`` over the sampled series.

``harness.results`` builds result.json with it, and ``harness.report`` shows what it decided.
"""
