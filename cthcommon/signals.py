"""Hold off SIGINT, SIGTERM and SIGHUP for a few lines that must not be cut in half.

A Python signal handler runs between any two bytecodes, so a Ctrl-C can land between "the
process was started" and "its PID is in the journal", in the middle of the last cleanup, or
between a thread's setns into a pod's namespace and its setns back home
(:func:`cthcommon.netns.entered`), leaving the thread, and every host sysctl it then reads
or restores, in the pod's namespace.
Inside :func:`deferred` such a signal is only noted; when the block ends the old handlers are
back and the signal is delivered again, so it still stops the run, just after the block.
SIGKILL cannot be deferred: ``conntrack-harness restore`` covers that one.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from types import FrameType
from typing import Any

DEFERRABLE = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def deferred() -> Iterator[None]:
    """Note the deferrable signals during the block; re-deliver them (in order) after it."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers can only be changed (and only run) in the main thread
        return
    pending: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    try:
        with installed(dict.fromkeys(DEFERRABLE, note)):
            yield
    finally:
        for signum in dict.fromkeys(pending):  # each signal once, first arrival first
            signal.raise_signal(signum)


@contextmanager
def installed(handlers: Mapping[int, Callable[[int, FrameType | None], Any]]) -> Iterator[None]:
    """These handlers during the block; the ones before it back after (main thread only)."""
    old = {s: signal.signal(s, h) for s, h in handlers.items()}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
