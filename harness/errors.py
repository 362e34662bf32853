"""The harness's exceptions: the project's one hierarchy, defined in :mod:`cthcommon.errors`
(the load generator raises them too, and does not import the harness). Every error derives
from :class:`HarnessError`; the CLI exits with the error's ``exit_code`` (listed there).
"""

from cthcommon.errors import (
    BackendError,
    BadInput,
    CommandFailed,
    ExpectationViolated,
    HarnessError,
    Inconclusive,
    InternalError,
    LockHeld,
    MissingTool,
    NotRoot,
    ReportFailed,
    RestoreFailed,
    UnsafeRequest,
)

__all__ = [
    "BackendError",
    "BadInput",
    "CommandFailed",
    "ExpectationViolated",
    "HarnessError",
    "Inconclusive",
    "InternalError",
    "LockHeld",
    "MissingTool",
    "NotRoot",
    "ReportFailed",
    "RestoreFailed",
    "UnsafeRequest",
]
