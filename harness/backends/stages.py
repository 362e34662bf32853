"""Progress lines for a backend's long setup and teardown steps.

Starting a kind cluster takes minutes (the private dockerd, the node and loadgen images,
``kind create cluster``, loading images, waiting for nodes, CoreDNS and the workload), and
without a word the run looks hung. A backend wraps each step in :meth:`Stages.stage`, which
says ``[kind] <step> ...`` when it starts and ``[kind] <step>: done (12.3s)`` (or what it
found, or ``failed after ...``) when it ends, through the :data:`Notice` the runner passes
down (the CLI's progress reporter: plain lines, or above the rich bar). Without a notice
nothing is printed.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

# one line of progress text, without its newline
Notice = Callable[[str], None]


@dataclass
class Stage:
    """A running step; set :attr:`result` to say what it found instead of ``done``."""

    what: str
    result: str = "done"


class Stages:
    """Reports steps as ``[<prefix>] <step> ...`` and ``[<prefix>] <step>: <result> (Ns)``."""

    def __init__(
        self,
        notice: Notice | None = None,
        prefix: str = "setup",
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.notice = notice
        self.prefix = prefix
        self.clock = clock

    def say(self, text: str) -> None:
        """One line, if anyone listens; a listener that fails never costs the run."""
        if self.notice is None:
            return
        with contextlib.suppress(Exception):  # progress text must never break a run
            self.notice(f"[{self.prefix}] {text}")

    @contextmanager
    def stage(self, what: str) -> Iterator[Stage]:
        st = Stage(what)
        self.say(f"{what} ...")
        t0 = self.clock()
        try:
            yield st
        except BaseException:
            self.say(f"{what}: failed after {self.clock() - t0:.1f}s")
            raise
        self.say(f"{what}: {st.result} ({self.clock() - t0:.1f}s)")

    def teardown(self, stack: ExitStack, what: str = "teardown") -> Teardown:
        """A teardown reported on ``stack``: call :meth:`Teardown.begin` when the unwinding
        starts; the line saying it ended comes when ``stack`` has unwound what was pushed
        after this call."""
        down = Teardown(self, what)
        stack.push(down.exit)
        return down


class Teardown:
    def __init__(self, stages: Stages, what: str) -> None:
        self.stages, self.what = stages, what
        self.t0: float | None = None
        self.cause: BaseException | None = None

    def begin(self, cause: BaseException | None = None) -> None:
        """The unwinding starts (``cause``: the exception it unwinds for, if any)."""
        if self.t0 is None:
            self.t0, self.cause = self.stages.clock(), cause
            self.stages.say(f"{self.what} ...")

    def exit(self, _type: object, exc: BaseException | None, _tb: object) -> bool:
        if self.t0 is not None:
            took = self.stages.clock() - self.t0
            ok = exc is None or exc is self.cause
            self.stages.say(
                f"{self.what}: done ({took:.1f}s)"
                if ok
                else f"{self.what}: failed after {took:.1f}s"
            )
        return False
