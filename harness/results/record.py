"""The record of one run, filled in as the run goes, so that whatever was measured can be
written out however the run ends (pure: no I/O here).

The runner appends each phase's result as soon as it is built. If anything fails afterwards
(a later phase, the teardown, a restore, the evidence), :meth:`RunRecord.fail` notes what, and
:meth:`RunRecord.result` still gives a complete result.json, with verdict ``error`` and the
phases that were measured.
"""

from __future__ import annotations

import os
import platform
import secrets
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime

from harness.judge.compare import comparisons
from harness.judge.gate import inconclusive_reasons, run_verdict
from harness.results.evidence import Evidence
from harness.results.schema import SCHEMA_VERSION, Environment, PhaseResult, RunResult, Verdict


def new_run_id() -> str:
    return secrets.token_hex(3)


def basic_environment(backend: str) -> Environment:
    """What is known without reading the host's sysctls (those are read under the lock)."""
    env = Environment(
        kernel=platform.release(),
        backend=backend,
        hostname=socket.gethostname(),
        python=platform.python_version(),
        sysctls={},
        tools={},
    )
    cpus = os.cpu_count()
    if cpus:
        env["cpus"] = cpus
    return env


@dataclass
class RunRecord:
    scenario: str  # the scenario's name
    backend: str
    command: str
    scenario_file: str | None = None
    scenario_text: str | None = None  # the file as it was read, once, before the run
    # the files it names (Corefile, locustfiles), read with it: {path relative to it: bytes}
    scenario_files: dict[str, bytes] = field(default_factory=dict)
    run_id: str = field(default_factory=new_run_id)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    finished_at: datetime | None = None
    environment: Environment | None = None
    phases: list[PhaseResult] = field(default_factory=list)
    evidence: Evidence = field(default_factory=Evidence)
    error: str | None = None

    def add_phase(self, phase: PhaseResult) -> None:
        self.phases.append(phase)

    def finish(self) -> None:
        if self.finished_at is None:
            self.finished_at = datetime.now(UTC)

    def fail(self, error: BaseException | str) -> None:
        """The run stopped (or its teardown failed) after it started: keep the first cause."""
        self.finish()
        if self.error is None:
            text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
            self.error = text.strip() or "the run failed"

    @property
    def verdict(self) -> Verdict:
        return run_verdict(self.phases, error=self.error is not None)

    def result(self) -> RunResult:
        out = RunResult(
            schema_version=SCHEMA_VERSION,
            run_id=self.run_id,
            scenario=self.scenario,
            scenario_file=self.scenario_file,
            started_at=self.started_at.isoformat(),
            finished_at=(self.finished_at or datetime.now(UTC)).isoformat(),
            command=self.command,
            verdict=self.verdict,
            environment=self.environment or basic_environment(self.backend),
            phases=list(self.phases),
        )
        out["comparisons"] = comparisons(out)
        if self.error is not None:
            out["error"] = self.error
        return out

    def inconclusive(self) -> list[str]:
        """Each inconclusive phase: why it was not steady, and what would make it so."""
        return inconclusive_reasons(self.phases)

    def violated(self) -> list[str]:
        """Each violated expectation, as ``phase: expectation (observed ...)``."""
        return [
            f"{p['name']}: {e['expect']} (observed {e['observed']})"
            for p in self.phases
            for e in p["expectations"]
            if not e["ok"]
        ]
