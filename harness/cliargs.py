"""Argument types and options the CLI's commands share (argparse)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

WAIT_HELP = "wait this long for another run's lock (default: refuse at once)"


def in_range(
    parse: Callable[[str], float], lo: float, hi: float, what: str
) -> Callable[[str], float]:
    """An argparse ``type=``: ``parse`` the value and refuse it outside ``lo..hi`` (exit 2)."""

    def check(value: str) -> float:
        try:
            n = parse(value)
        except ValueError:
            n = math.nan
        if not lo <= n <= hi:  # NaN fails too
            raise argparse.ArgumentTypeError(f"{what} is needed, not {value!r}")
        return n

    return check


seconds = in_range(float, 0, 1e9, "a number of seconds >= 0")


def add_wait(parser: argparse.ArgumentParser, help: str = WAIT_HELP) -> None:
    """``--wait SECONDS``: how long to wait for the host lock (default 0: refuse at once)."""
    parser.add_argument("--wait", type=seconds, default=0.0, metavar="SECONDS", help=help)
