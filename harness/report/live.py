"""What a person and Prometheus see while a run goes: the progress lines and the metrics.

Neither may cost the run: a metrics textfile that cannot be written is said once on stderr
and the run goes on (the file is checked before the run starts, see :func:`check_textfile`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from cthcommon.errors import BadInput
from harness.metrics.prometheus import HarnessMetrics
from harness.report.progress import make_progress
from harness.results.schema import PhaseResult


def check_textfile(path: Path) -> Path:
    """A node-exporter textfile must end in .prom, and its directory must take files."""
    field = "--metrics-textfile"
    if path.suffix != ".prom":
        raise BadInput("node-exporter only reads *.prom files", field=field, value=str(path))
    if path.is_dir():
        raise BadInput("is a directory", field=field, value=str(path))
    parent = path.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise BadInput("its directory is missing or not writable", field=field, value=str(path))
    if path.exists() and not os.access(path, os.W_OK):
        raise BadInput("not writable", field=field, value=str(path))
    return path


class LiveRun:
    """Progress callbacks for :func:`harness.runner.run`, feeding the bar and the metrics:
    :meth:`progress` during a phase's load, :meth:`notice` for a backend's setup steps."""

    def __init__(self, metrics_port: int | None = None, textfile: Path | None = None) -> None:
        """``textfile`` may be set later (the report dir is made after the port is bound)."""
        self.metrics = HarnessMetrics()
        self.textfile = textfile
        self.textfile_error: str | None = None
        self.reporter = make_progress()
        self._phase = ""
        if metrics_port is not None:
            try:
                port = self.metrics.serve(metrics_port)
            except OSError as e:
                raise BadInput(
                    f"cannot serve metrics there: {e.strerror or e}",
                    field="--metrics-port",
                    value=metrics_port,
                ) from None
            print(f"metrics: http://127.0.0.1:{port}/metrics (during the run)", file=sys.stderr)

    def progress(self, phase: str, elapsed: float, total: float, info: dict[str, Any]) -> None:
        cmax = info.get("max", 0) or 1
        for node, count in info.get("conntrack", {}).items():
            self.metrics.observe_conntrack(node, count, cmax)
        if phase != self._phase:
            self._phase = phase
            self.reporter.phase_started(phase, total)
        fill = " ".join(
            f"{n} {c}/{cmax} ({100 * c / cmax:.0f}%)" for n, c in info.get("conntrack", {}).items()
        )
        waiting = int(info.get("waiting") or 0)  # pods still handing in their results
        if waiting:
            whose = "1 pod's" if waiting == 1 else f"{waiting} pods'"
            fill += f"; waiting for {whose} results"
        self.reporter.update(elapsed, f"conntrack {fill}")

    def notice(self, line: str) -> None:
        """A line of setup/teardown progress (``[kind] creating the cluster ...``)."""
        self.reporter.note(line)

    def on_phase(self, p: PhaseResult) -> None:
        d = p["dns"]
        self.reporter.phase_finished(
            p["name"] + (" [INJECTED]" if p["injected"] else ""),
            f"{p['verdict'].upper()}: {d['lookups']} lookups, {d['timeouts']} timed out, "
            f"conntrack peak {p['conntrack']['peak_count']}, drop {p['conntrack']['drop']}",
        )
        self.metrics.load_result({"phases": [p]})  # type: ignore[typeddict-item]
        self.write_textfile()

    def write_textfile(self) -> None:
        if self.textfile is None or self.textfile_error is not None:
            return
        try:
            self.metrics.write_textfile(self.textfile)
        except (OSError, BadInput) as e:
            self.textfile_error = str(e)
            print(
                f"conntrack-harness: metrics textfile {self.textfile} not written ({e}); "
                "the run goes on",
                file=sys.stderr,
            )

    def close(self) -> None:
        self.reporter.close()
        self.metrics.close()
