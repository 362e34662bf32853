"""Compatibility alias: the result schema lives in :mod:`harness.results.schema`.

Kept so modules written against ``harness.result`` keep importing while they move over;
new code imports ``harness.results.schema``.
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
