"""The project's exceptions, the harness's and the load generator's: one hierarchy, imported
from here by both. Every error either raises derives from :class:`HarnessError`.

Each class's docstring is its default message. The CLI exits with the error's ``exit_code``:

- 1: :class:`ExpectationViolated`, and nothing else;
- 2: bad input or a refusal (:class:`BadInput`, :class:`MissingTool`, :class:`LockHeld`);
- 3: the backend failed (:class:`BackendError`, and any other :class:`HarnessError`);
- 4: :class:`RestoreFailed` (always loud);
- 5: :class:`InternalError`: writing the reports failed, or an unexpected exception (a bug);
  the CLI prints its traceback;
- 6: :class:`Inconclusive`: every expectation held, but a phase with expectations was not
  measured in its load's steady state (``harness.judge.gate``): never a pass.
"""

from __future__ import annotations

from typing import Any


class HarnessError(Exception):
    """conntrack-harness failed."""

    exit_code = 3

    def __init__(self, *args: object, **context: Any) -> None:
        if not args:
            args = (self.__doc__ or self.__class__.__name__,)
        super().__init__(*args)
        self.context = context


class BadInput(HarnessError):
    """The input is invalid."""

    exit_code = 2

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str | None = None,
        value: object = None,
        allowed: object = None,
        source: str | None = None,
    ) -> None:
        parts = []
        if source:
            parts.append(source)
        if field:
            parts.append(f"field '{field}'")
        head = ": ".join(parts)
        text = message or (self.__doc__ or "invalid input")
        if value is not None:
            text += f" (got {value!r})"
        if allowed is not None:
            text += f"; allowed: {allowed}"
        super().__init__(f"{head}: {text}" if head else text)
        self.field = field
        self.value = value
        self.allowed = allowed
        self.source = source


class NotRoot(BadInput):
    """must run as root: it builds network namespaces, iptables rules and changes sysctls."""


class UnsafeRequest(BadInput):
    """Refused: the request would disturb the host beyond what the harness may do."""


class MissingTool(HarnessError):
    """A required program is missing."""

    exit_code = 2


class BackendError(HarnessError):
    """The backend failed to realize or drive the cluster."""


class CommandFailed(BackendError):
    """A command run by the backend failed."""

    def __init__(self, argv: list[str], returncode: int, stderr: str) -> None:
        super().__init__(
            f"command failed ({returncode}): {' '.join(argv)}: {stderr.strip()[-500:]}",
            argv=argv,
            returncode=returncode,
            stderr=stderr,
        )
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr


class LockHeld(HarnessError):
    """Another conntrack-harness run holds the host lock."""

    exit_code = 2


class RestoreFailed(HarnessError):
    """Restoring host state failed: the host is NOT back to its recorded state."""

    exit_code = 4


class ExpectationViolated(HarnessError):
    """A scenario expectation did not hold."""

    exit_code = 1

    def __init__(self, violated: list[str]) -> None:
        super().__init__(
            "expectations violated:\n  " + "\n  ".join(violated) if violated else self.__doc__,
            violated=violated,
        )
        self.violated = violated


class Inconclusive(HarnessError):
    """A phase with expectations was not measured in its load's steady state: inconclusive."""

    exit_code = 6

    def __init__(self, reasons: list[str]) -> None:
        super().__init__(
            "inconclusive: not measured in steady state (every expectation held, which says "
            "nothing about the steady state):\n  " + "\n  ".join(reasons)
            if reasons
            else self.__doc__,
            reasons=reasons,
        )
        self.reasons = reasons


class InternalError(HarnessError):
    """conntrack-harness failed unexpectedly (a bug; the traceback says where)."""

    exit_code = 5


class ReportFailed(InternalError):
    """The run's result was measured, but some of its reports could not be written."""
