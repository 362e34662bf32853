"""One results seam: the result.json schema (:mod:`.schema`), building a phase's result from
its measurements (:mod:`.build`), the before/after comparisons (:mod:`.compare`), the typed
evidence every backend hands over (:mod:`.evidence`) and the record of one run, kept whatever
fails after the measurement (:mod:`.record`).

Only the schema is re-exported here: the builders import the diagnosis and the metrics, which
themselves import the schema.
"""

from harness.results.schema import (
    SCHEMA_VERSION,
    Agreement,
    AlertResult,
    CaptureResult,
    Comparison,
    ConntrackResult,
    DiagnosisResult,
    DNSResult,
    Environment,
    ExpectationResult,
    HTTPResult,
    LatencyHist,
    LatencyMs,
    NodeConntrack,
    PhaseResult,
    RaceResult,
    RateCI,
    RunResult,
    ServerResult,
    Verdict,
)

__all__ = [
    "SCHEMA_VERSION",
    "Agreement",
    "AlertResult",
    "CaptureResult",
    "Comparison",
    "ConntrackResult",
    "DNSResult",
    "DiagnosisResult",
    "Environment",
    "ExpectationResult",
    "HTTPResult",
    "LatencyHist",
    "LatencyMs",
    "NodeConntrack",
    "PhaseResult",
    "RaceResult",
    "RateCI",
    "RunResult",
    "ServerResult",
    "Verdict",
]
