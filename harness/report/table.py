"""The verdict table on a terminal (rich), or plain lines in CI and pipes."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import TextIO

from rich.console import Console
from rich.table import Table

from harness.judge.summary import (
    NO_EXPECTATION,
    rate_with_ci,
    remediation_verdicts,
    run_verdict,
    summarize,
)
from harness.results.schema import RunResult

COLUMNS = (
    "phase",
    "injected",
    "lookups",
    "timeout rate [95% CI]",
    "conntrack drop",
    "steady",
    "verdict",
)
Row = tuple[str, str, str, str, str, str, str]
_STYLE = {
    "pass": "bold green",
    "fail": "bold red",
    "inconclusive": "bold dark_orange",
    "error": "bold magenta",
    NO_EXPECTATION: "bold yellow",
}


def use_plain(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Plain lines when CI=true, TERM=dumb, NO_COLOR-free pipes, or not a TTY."""
    env = os.environ if environ is None else environ
    if env.get("CI", "").lower() in ("true", "1", "yes"):
        return True
    if env.get("TERM") == "dumb":
        return True
    isatty = getattr(stream, "isatty", None)
    return not (callable(isatty) and isatty())


def verdict_rows(result: RunResult) -> list[Row]:
    """The table's rows as strings, one per phase (repeats pooled). "steady" says
    whether the phase measured in the load's steady state (``NO``: result.json's
    ``steady_state.reason`` says why; its verdict does not describe the steady state)."""
    rows: list[Row] = []
    for s in summarize(result):
        name = s.name if s.repeats == 1 else f"{s.name} (x{s.repeats})"
        rows.append(
            (
                name,
                "INJECTED" if s.injected else "no",
                str(s.lookups),
                rate_with_ci(s),
                drops_text(s.drop, s.early_drop),
                s.steady_text,
                s.shown,
            )
        )
    return rows


def drops_text(drop: int, early_drop: int) -> str:
    """conntrack ``drop`` (packets the table refused), the count the progress line shows;
    ``early_drop`` (unassured entries evicted to make room) follows it when there were any."""
    return f"{drop} (+{early_drop} early_drop)" if early_drop else str(drop)


def _footer(result: RunResult) -> list[str]:
    lines = [
        f"{v.after.name}: {v.comparison.sentence}" for v in remediation_verdicts(summarize(result))
    ]
    lines.append(f"run verdict: {run_verdict(result)}")
    return lines


def _plain(key: str, value: str) -> str:
    if key == "timeout_rate":
        return value.replace(" ", "")
    return value if " " not in value else repr(value)


def render_plain_table(result: RunResult) -> str:
    """Tab-free, one line per phase, grep-able: ``phase=... injected=... verdict=...``."""
    keys = ("phase", "injected", "lookups", "timeout_rate", "drops", "steady", "verdict")
    out = [f"{result['scenario']} ({result['run_id']})"]
    for row in verdict_rows(result):
        out.append(" ".join(f"{k}={_plain(k, v)}" for k, v in zip(keys, row, strict=True)))
    out.extend(_footer(result))
    return "\n".join(out) + "\n"


def rich_table(result: RunResult) -> Table:
    table = Table(title=f"{result['scenario']}: {run_verdict(result).upper()}")
    for col in COLUMNS:
        table.add_column(
            col,
            justify="right" if col in ("lookups", "conntrack drop") else "left",
            overflow="fold",  # a long phase name wraps; it is never cut to "…"
        )
    for row in verdict_rows(result):
        styled = [*row[:6], f"[{_STYLE.get(row[6], '')}]{row[6]}[/]"]
        if row[5] == "NO":
            styled[5] = "[yellow]NO[/]"
        if row[1] == "INJECTED":
            styled[1] = "[yellow]INJECTED[/]"
        table.add_row(*styled)
    return table


def print_verdict_table(
    result: RunResult,
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
    width: int | None = None,
) -> None:
    """Print the table: rich on a terminal (``width``: default the terminal's), plain lines
    otherwise."""
    out = stream or sys.stdout
    if use_plain(out, environ):
        out.write(render_plain_table(result))
        return
    console = Console(file=out, width=width)
    console.print(rich_table(result))
    for line in _footer(result):
        console.print(line, highlight=False)
