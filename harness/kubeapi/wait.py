"""Readiness waits for the components: poll a probe until it passes, fail fast when a process
dies, and on timeout say what was tried last and what the component logged."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from cthcommon.errors import BackendError
from harness.kernel.process import Proc

# the transient errors a probe may raise while a component is starting
TRANSIENT: tuple[type[BaseException], ...] = (OSError, BackendError, ValueError)

Probe = Callable[[], str | None]


def _tails(procs: Sequence[Proc], n: int = 1500) -> str:
    return "".join(f"\n--- {p.name} log tail ---\n{p.tail(n)}" for p in procs if p.log)


def wait_for(
    what: str,
    probe: Probe,
    *,
    timeout_s: float,
    procs: Sequence[Proc] = (),
    interval_s: float = 0.1,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    stuck: Probe | None = None,
) -> None:
    """Poll ``probe`` (None: ready; a string: why not yet) until ready or ``timeout_s``.

    Only :data:`TRANSIENT` errors from the probe are retried. A process in ``procs`` that
    exits is a failure at once, and so is ``stuck`` saying why the wait cannot succeed (asked
    after each failed probe; its transient errors are ignored). The failures carry the last
    reason and the logs' tails.
    """
    deadline = clock() + timeout_s
    last = "not probed yet"
    while True:
        for p in procs:
            if not p.alive():
                raise BackendError(
                    f"{p.name} (pid {p.pid}) exited with {p.popen.returncode} while waiting "
                    f"for {what}; last probe: {last}{_tails([p])}"
                )
        try:
            reason = probe()
        except TRANSIENT as e:
            reason = f"{type(e).__name__}: {e}"
        if reason is None:
            return
        last = reason
        try:
            hopeless = stuck() if stuck is not None else None
        except TRANSIENT:
            hopeless = None
        if hopeless is not None:
            raise BackendError(f"{what} cannot become ready: {hopeless}; last probe: {last}")
        if clock() >= deadline:
            raise BackendError(
                f"timed out after {timeout_s:g}s waiting for {what}; last probe: {last}"
                f"{_tails(procs)}"
            )
        sleep(interval_s)
