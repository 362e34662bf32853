"""Stacked: the lifecycle every built thing here shares (the topology, the control plane,
the Kubernetes parts, their processes).

A subclass makes ``self._stack`` (an :class:`~contextlib.ExitStack`) and builds in
:meth:`_start`, registering each undo step on the stack right after the change it undoes.
Entering runs :meth:`_start`; a start that fails halfway, leaving the block and
:meth:`close` undo whatever was done, in reverse. ``close`` is idempotent.
"""

from __future__ import annotations

from contextlib import ExitStack
from types import TracebackType
from typing import Self


class Stacked:
    _stack: ExitStack

    def _start(self) -> None:
        """Build; nothing to do by default (a holder filled after it is entered)."""

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()
