"""Endurance: many consecutive runs, in one process and across processes, stay flat.

In one process (``harness.runner.run_scenario``, as a pytest plugin or CI job calls it) the
figures after each run are this process's RSS, open descriptors, threads and child processes
(zombies included). Across processes (the CLI, one process per run) they are the run's peak
RSS (from ``wait4``), this process's descriptors and children, and what the run left on the
host. A leak shows as growth from the first runs to the last ones.

Counts: ``CTH_ENDURANCE_RUNS`` (in one process, default 8) and ``CTH_ENDURANCE_PROC_RUNS``
(across processes, default 7). Each run starts the real control plane, kube-proxy and CoreDNS
(~20 s), so the defaults keep the module near 5 minutes in ``make test``; the full mode is 50
and 20. The first run is left out (imports, caches); the next half is compared with the last
half, so any per-run growth shows.
The in-process scenario leaves nf_conntrack_max alone (this process cannot be given a
stand-in for it); the CLI runs shrink the stand-in (see ``hostcheck``).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import yaml

from harness import runner
from harness.scenario.loader import parse_scenario
from tests.kernel.hostcheck import FakeSysctls, Snapshot, cli_argv, new_run_id

pytestmark = [pytest.mark.kernel, pytest.mark.endurance]

RUNS = int(os.environ.get("CTH_ENDURANCE_RUNS", "8"))
PROC_RUNS = int(os.environ.get("CTH_ENDURANCE_PROC_RUNS", "7"))
T = TypeVar("T")
MIN_RUNS = 7  # the first, then at least three to compare with the last three

SCENARIO = {
    "name": "endurance",
    "cluster": {"nodes": 2, "client_pods": 2},
    "node_sysctls": {"tcp_timeout_time_wait": 30},
    "load": {"duration_s": 1, "http": {"rate": 40}, "dns": {"rate": 10}},
    "phases": [{"name": "baseline"}],
}


@dataclass
class Figures:
    rss_kb: int
    fds: int
    threads: int
    children: int


def _status(key: str, pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def _children() -> int:
    me = str(os.getpid())
    n = 0
    for p in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = p.read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2 :].split()[1] == me:
            n += 1
    return n


def _figures() -> Figures:
    return Figures(
        rss_kb=_status("VmRSS"),
        fds=len(os.listdir("/proc/self/fd")),
        threads=threading.active_count(),
        children=_children(),
    )


def _summary(label: str, rows: list[Figures], wall: float) -> str:
    def col(name: str) -> list[int]:
        return [getattr(r, name) for r in rows]

    head, tail = _halves(rows)
    out = [f"{label}: {len(rows)} runs in {wall:.0f}s (earlier: runs 2-{len(head) + 1})"]
    for name in ("rss_kb", "fds", "threads", "children"):
        c = col(name)
        out.append(
            f"  {name:<9} run1 {c[0]:>7}  earlier mean {statistics.mean(getattr(r, name) for r in head):>9.1f}"
            f"  last {len(tail)} mean {statistics.mean(getattr(r, name) for r in tail):>9.1f}"
            f"  min {min(c):>7} max {max(c):>7}"
        )
    return "\n".join(out)


def _halves(rows: list[T]) -> tuple[list[T], list[T]]:
    """The runs after the first, split: the earlier half and the later half (at most 10)."""
    w = min(10, (len(rows) - 1) // 2)
    return rows[1 : 1 + w], rows[-w:]


def _assert_flat(rows: list[Figures], rss_slack_kb: int) -> None:
    assert len(rows) >= MIN_RUNS
    head, tail = _halves(rows)
    rss0 = statistics.mean(r.rss_kb for r in head)
    rss1 = statistics.mean(r.rss_kb for r in tail)
    assert rss1 - rss0 <= rss_slack_kb, (rss0, rss1)
    assert max(r.fds for r in tail) <= max(r.fds for r in head), [r.fds for r in rows]
    assert max(r.threads for r in tail) <= max(r.threads for r in head)
    assert all(r.children == 0 for r in rows), [r.children for r in rows]


@pytest.mark.skipif(RUNS < MIN_RUNS, reason=f"needs at least {MIN_RUNS} runs")
def test_consecutive_runs_in_one_process_stay_flat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CONNTRACK_HARNESS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)  # each run's default report dir, not the checkout's
    monkeypatch.setattr(runner, "new_run_id", new_run_id)
    scenario = parse_scenario(SCENARIO)
    rows = []
    t0 = time.monotonic()
    for _ in range(RUNS):
        result = runner.run_scenario(scenario, backend="netns")
        assert result["phases"][0]["dns"]["lookups"] > 0
        rows.append(_figures())
    wall = time.monotonic() - t0
    with capsys.disabled():
        print("\n" + _summary("endurance, one process", rows, wall))
    assert not list((tmp_path / "state" / "runs").glob("*.jsonl"))
    _assert_flat(rows, rss_slack_kb=8 * 1024)


@pytest.mark.skipif(PROC_RUNS < MIN_RUNS, reason=f"needs at least {MIN_RUNS} runs")
def test_consecutive_cli_runs_stay_flat(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = FakeSysctls.create(tmp_path / "fake")
    state = tmp_path / "state"
    scen = {**SCENARIO, "host": {"nf_conntrack_max": 16384}}
    f = tmp_path / "e.yaml"
    f.write_text(yaml.safe_dump(scen))
    rows, peaks, left = [], [], []
    t0 = time.monotonic()
    for _ in range(PROC_RUNS):
        rid = new_run_id()
        before = Snapshot.take(fake, state, {rid}, set(), rid)
        proc = subprocess.Popen(
            fake.argv(cli_argv(rid, "run", str(f))),
            env=fake.env(state, rid),
            cwd=tmp_path,  # the run's default report dir goes there, not into the checkout
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        assert proc.returncode in (0, 1, 6)  # a verdict: pass, violated or inconclusive
        peaks.append(usage.ru_maxrss)
        left += Snapshot.take(fake, state, {rid}, set(), rid).leftovers_since(before)
        rows.append(_figures())
    wall = time.monotonic() - t0
    p0, p1 = _halves(peaks)
    with capsys.disabled():
        print("\n" + _summary("endurance, one CLI process per run (this process)", rows, wall))
        print(
            f"  CLI peak RSS kB: run1 {peaks[0]}, earlier mean {statistics.mean(p0):.0f}, "
            f"last {len(p1)} mean {statistics.mean(p1):.0f}"
            f"; leftovers found: {len(left)}"
        )
    assert not left, left
    _assert_flat(rows, rss_slack_kb=4 * 1024)
    assert statistics.mean(p1) <= statistics.mean(p0) * 1.1
