"""Ctrl-C, SIGTERM and SIGHUP at every point of a run: it stops within 5 s with 128+N, and
the host goes back to how it was.

The points (set-up, warm-up, load, measurement, teardown) are hit by reading the progress
lines ``run`` prints on stderr, never by sleeping. The child's signal dispositions are set
here, before it execs: a suite started as a background job of a non-interactive shell
inherits SIGINT *ignored*, and a Python started that way installs no KeyboardInterrupt
handler, so a test that left the disposition to its parent would test the parent's shell.

Each run goes through :mod:`tests.kernel.hostcheck`: its own mount namespace with files
standing in for the global conntrack sysctls, a known run id, and a snapshot of everything
that run could leave behind. It queues on the host lock like every run (``--wait``).
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kernel.hostcheck import FakeSysctls, Snapshot, cli_argv, new_run_id

ROOT = Path(__file__).resolve().parents[2]
STOP_WITHIN_S = 5.0  # issue 19: Ctrl-C stops a run within 5 s from any point
LOCK_WAIT_S = 1800  # other runs on this host go first
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def exhaustion_baseline() -> dict[str, Any]:
    """scenarios/exhaustion.yaml with its baseline phase only: the aged warm-up fills the
    4096-entry table, the load holds it full, DNS times out (the drain has work to do)."""
    data = yaml.safe_load((ROOT / "scenarios" / "exhaustion.yaml").read_text())
    data["phases"] = [p for p in data["phases"] if p["name"] == "baseline"]
    return data


def dispositions(ignore_sigint: bool) -> list[str]:
    """An ``env`` prefix that sets, in the child before it execs, every stop signal to its
    default (and SIGINT to ignored, if asked, as ``nohup`` or a background job of a
    non-interactive shell leaves it). Done by ``env`` (coreutils), not ``preexec_fn``:
    this process has reader threads, and Python code between fork and exec is not safe then.
    """
    argv = ["env", "--default-signal=INT,TERM,HUP"]
    return [*argv, "--ignore-signal=INT"] if ignore_sigint else argv


@dataclass
class Lines:
    """The run's stderr, line by line, read in a thread; waits for a line to appear."""

    stream: Any
    lines: list[str] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _done: bool = False

    def start(self) -> Lines:
        threading.Thread(target=self._read, daemon=True).start()
        return self

    def _read(self) -> None:
        for line in self.stream:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._done = True
            self._cond.notify_all()

    def wait_for(self, matches: Callable[[str], bool], timeout: float) -> str:
        end = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    if matches(line):
                        return line
                seen = len(self.lines)
                left = end - time.monotonic()
                if self._done or left <= 0:
                    tail = "\n".join(self.lines[-30:])
                    raise AssertionError(f"the line never came; the run said:\n{tail}")
                self._cond.wait(left)

    def text(self) -> str:
        with self._cond:
            return "\n".join(self.lines)


@dataclass
class Run:
    proc: subprocess.Popen[str]
    err: Lines
    fake: FakeSysctls
    state: Path
    run_id: str
    before: Snapshot

    def leftovers(self) -> list[str]:
        after = Snapshot.take(self.fake, self.state, {self.run_id}, set(), self.run_id)
        return after.leftovers_since(self.before)


@pytest.fixture
def start_run(tmp_path: Path) -> Iterator[Callable[..., Run]]:
    """Start ``run`` on a scenario; afterwards, a run still going is killed and the host
    repaired with ``restore``, so a failure here cannot leave a shrunken table behind."""
    runs: list[Run] = []

    def start(scenario: dict[str, Any], *, ignore_sigint: bool = False) -> Run:
        n = len(runs)
        f = tmp_path / f"s{n}.yaml"
        f.write_text(yaml.safe_dump(scenario))
        fake = FakeSysctls.create(tmp_path / f"fake{n}")
        state = tmp_path / f"state{n}"
        rid = new_run_id()
        before = Snapshot.take(fake, state, {rid}, set(), rid)
        argv = cli_argv(rid, "run", str(f), "--wait", str(LOCK_WAIT_S))
        argv += ["--report-dir", str(tmp_path / f"reports{n}")]
        proc = subprocess.Popen(
            [*dispositions(ignore_sigint), *fake.argv(argv)],
            env={**fake.env(state, rid), "CI": "true"},  # plain progress lines
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        run = Run(proc, Lines(proc.stderr).start(), fake, state, rid, before)
        runs.append(run)
        return run

    yield start
    for run in runs:
        if run.proc.poll() is None:
            run.proc.kill()
            run.proc.wait()
            subprocess.run(
                cli_argv(None, "restore", "--wait", "120"),
                env=run.fake.env(run.state, run.run_id),
                capture_output=True,
                check=False,
            )


def _stop(run: Run, sig: signal.Signals) -> float:
    """Send ``sig``; the seconds until the run exited (it is killed after 60 s)."""
    t0 = time.monotonic()
    print(f"{sig.name} sent after: {run.err.lines[-1] if run.err.lines else ''}")
    run.proc.send_signal(sig)
    try:
        run.proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        run.proc.kill()
        run.proc.wait()
        pytest.fail(f"{sig.name} did not stop the run within 60 s:\n{run.err.text()[-3000:]}")
    took = time.monotonic() - t0
    print(f"{sig.name}: exit {run.proc.returncode} after {took:.2f}s")
    return took


def _final_progress(phase: str) -> Callable[[str], bool]:
    """The phase's progress line at its full duration: the load has ended, the worker drains
    and the sampler takes its last readings."""
    pat = re.compile(rf"^\[{re.escape(phase)}\] ([0-9.]+)/([0-9.]+)s ")

    def hit(line: str) -> bool:
        m = pat.match(line)
        return m is not None and float(m.group(1)) >= float(m.group(2))

    return hit


def _starts(prefix: str) -> Callable[[str], bool]:
    return lambda line: line.startswith(prefix)


# point -> the line that says the run is there
POINTS: dict[str, Callable[[str], bool]] = {
    "set-up": _starts("[netns] starting the control plane, kube-proxy and CoreDNS ..."),
    "warm-up": _starts("[netns] warm-up: the aged fill ..."),
    "load": _starts("[baseline] started"),
    "measurement": _final_progress("baseline"),
    "teardown": _starts("[netns] teardown ..."),
}


@pytest.mark.parametrize("point", list(POINTS))
def test_ctrl_c_stops_within_5s_at_every_point(start_run: Callable[..., Run], point: str) -> None:
    run = start_run(exhaustion_baseline())
    run.err.wait_for(POINTS[point], timeout=LOCK_WAIT_S + 300)
    took = _stop(run, signal.SIGINT)
    out = run.err.text()
    assert run.proc.returncode == 130, out[-3000:]
    assert took <= STOP_WITHIN_S, f"Ctrl-C at {point} took {took:.1f}s to stop the run\n{out}"
    assert "interrupted; host state restored" in out
    assert not run.leftovers()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_term_and_hup_mid_load_restore_everything(
    start_run: Callable[..., Run], sig: signal.Signals
) -> None:
    run = start_run(exhaustion_baseline())
    run.err.wait_for(POINTS["load"], timeout=LOCK_WAIT_S + 300)
    took = _stop(run, sig)
    out = run.err.text()
    assert run.proc.returncode == 128 + sig, out[-3000:]
    assert took <= STOP_WITHIN_S, f"{sig.name} took {took:.1f}s to stop the run\n{out}"
    assert "host state restored" in out
    assert not run.leftovers()


def test_started_with_sigint_ignored_keeps_running(start_run: Callable[..., Run]) -> None:
    """As ``nohup`` intends (README, exit codes): SIGINT ignored at start stays ignored; the
    run goes on, and SIGTERM still stops it and restores the host."""
    run = start_run(exhaustion_baseline(), ignore_sigint=True)
    run.err.wait_for(POINTS["load"], timeout=LOCK_WAIT_S + 300)
    run.proc.send_signal(signal.SIGINT)
    # the load goes on: its progress keeps coming, and the process is still there
    run.err.wait_for(_final_progress("baseline"), timeout=60)
    assert run.proc.poll() is None, run.err.text()[-3000:]
    took = _stop(run, signal.SIGTERM)
    assert run.proc.returncode == 128 + signal.SIGTERM, run.err.text()[-3000:]
    assert took <= STOP_WITHIN_S
    assert not run.leftovers()
