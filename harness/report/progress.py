"""Progress of a long run: a rich progress bar on a terminal, plain throttled lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from harness.report.table import use_plain


class ProgressReporter(Protocol):
    def phase_started(self, name: str, duration_s: float) -> None: ...
    def update(self, elapsed_s: float, detail: str) -> None: ...
    def phase_finished(self, name: str, verdict: str) -> None: ...
    def note(self, line: str) -> None: ...
    def close(self) -> None: ...


class PlainProgress:
    """``[phase] 12.0/20.0s node-1 4096/4096 (100%)`` at most every ``every_s`` seconds.

    The phase's final state (elapsed = its duration) is printed once, at once: a backend
    that keeps reporting while its workers hand in their results adds no repeated lines."""

    def __init__(
        self, stream: TextIO, every_s: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.stream, self.every_s, self.clock = stream, every_s, clock
        self._name, self._duration, self._last = "", 0.0, -1e18
        self._final = False

    def _emit(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def phase_started(self, name: str, duration_s: float) -> None:
        self._name, self._duration, self._last = name, duration_s, -1e18
        self._final = False
        self._emit(f"[{name}] started ({duration_s:g}s)")

    def update(self, elapsed_s: float, detail: str) -> None:
        if self._final:
            return
        final = elapsed_s >= self._duration
        now = self.clock()
        if not final and now - self._last < self.every_s:
            return
        self._last, self._final = now, final
        self._emit(f"[{self._name}] {elapsed_s:.1f}/{self._duration:g}s {detail}")

    def phase_finished(self, name: str, verdict: str) -> None:
        self._emit(f"[{name}] finished: {verdict}")

    def note(self, line: str) -> None:
        self._emit(line)

    def close(self) -> None:
        return None


class RichProgress:
    """One bar per phase with live lookup/timeout counts."""

    def __init__(self, stream: TextIO) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.completed:.0f}/{task.total:.0f}s"),
            TextColumn("{task.fields[detail]}"),
            TimeRemainingColumn(),
            console=Console(file=stream),
            transient=False,
        )
        self._task: TaskID | None = None
        self._progress.start()

    def phase_started(self, name: str, duration_s: float) -> None:
        self._task = self._progress.add_task(name, total=duration_s, detail="")

    def update(self, elapsed_s: float, detail: str) -> None:
        if self._task is not None:
            self._progress.update(self._task, completed=elapsed_s, detail=detail)

    def phase_finished(self, name: str, verdict: str) -> None:
        if self._task is not None:
            task = self._progress.tasks[-1]
            self._progress.update(
                self._task, completed=task.total, description=f"{name}: {verdict}"
            )
            self._task = None

    def note(self, line: str) -> None:
        """A line above the bars (``[kind] ...`` setup steps): plain text, no markup."""
        self._progress.console.print(line, markup=False, highlight=False)

    def close(self) -> None:
        self._progress.stop()


def make_progress(
    stream: TextIO | None = None, environ: Mapping[str, str] | None = None
) -> ProgressReporter:
    """Rich on a TTY, plain lines when CI=true or not a terminal."""
    out = stream or sys.stderr
    if use_plain(out, environ):
        return PlainProgress(out)
    return RichProgress(out)
