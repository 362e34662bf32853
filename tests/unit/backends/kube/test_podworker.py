"""The pod worker's start on cue, end to end without a cluster: the pod's own script
(``POD_WORKER_SCRIPT``, with this interpreter for the image's ``python3``) runs the real
``loadgen.worker --cue`` in a local process, driven by :class:`PodWorker` as a phase drives
``kubectl exec``."""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import pytest

from cthcommon.errors import BackendError, BadInput
from harness.backends.kube.podplans import POD_WORKER_SCRIPT
from harness.backends.kube.podworker import PodWorker, RunnerWorker
from harness.backends.kube.proc import subprocess_runner
from loadgen.worker import READY, WorkerPlan, await_cue

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[4]


def local_argv() -> list[str]:
    script = POD_WORKER_SCRIPT.replace("python3", sys.executable)
    return ["/bin/sh", "-c", f"cd {ROOT} && {script}"]


def test_workers_launched_apart_start_together_on_one_cue() -> None:
    plan = WorkerPlan(duration_s=0.05, pod="p0")
    first = PodWorker(local_argv(), plan)
    time.sleep(0.5)  # the second pod's exec came later
    second = PodWorker(local_argv(), WorkerPlan(duration_s=0.05, pod="p1"))
    try:
        deadline = time.monotonic() + 60
        for w in (first, second):
            w.wait_ready(deadline)
        assert first.returncode() is None  # ready, and waiting for its cue
        time.sleep(0.3)
        assert first.returncode() is None  # nothing starts without it
        cued = time.monotonic() + 0.2
        for w in (first, second):
            w.go(0.2)
        a, b = first.result(60), second.result(60)
    finally:
        first.stop()
        second.stop()
    # both began their load one lead after the cue, whenever they were launched
    assert abs(a["started_monotonic"] - b["started_monotonic"]) < 0.1
    assert cued - 0.05 <= a["started_monotonic"] <= cued + 0.5


def test_a_worker_that_dies_before_ready_is_a_backend_failure_with_its_stderr() -> None:
    w = PodWorker(["/bin/sh", "-c", "echo no such module >&2; exit 3"], WorkerPlan(1.0, pod="p"))
    with pytest.raises(BackendError) as e:
        w.wait_ready(time.monotonic() + 30)
    assert "ended before it was ready (exit 3" in str(e.value)
    assert "no such module" in e.value.context["stderr"]


def test_a_worker_that_is_never_ready_times_out_and_is_stopped() -> None:
    w = PodWorker(["/bin/sh", "-c", "sleep 30"], WorkerPlan(1.0, pod="p"))
    t0 = time.monotonic()
    with pytest.raises(BackendError, match="not ready in time"):
        w.wait_ready(time.monotonic() + 0.3)
    w.stop()
    assert w.returncode() is not None
    assert time.monotonic() - t0 < 10


def test_the_cue_line_is_checked() -> None:
    plan = WorkerPlan(1.0, pod="p")
    out = io.StringIO()
    t0 = time.monotonic()
    cued = await_cue(plan, io.StringIO('{"start_in_s": 0.5}\n'), out)
    assert out.getvalue() == READY + "\n"
    assert cued.start_at_monotonic is not None
    assert t0 + 0.5 <= cued.start_at_monotonic <= time.monotonic() + 0.5
    for bad in ("", "go\n", '{"start_in_s": -1}\n', '{"start_in_s": 3600}\n', "{}\n"):
        with pytest.raises(BadInput):
            await_cue(plan, io.StringIO(bad), io.StringIO())


def test_the_one_go_worker_sends_plan_and_cue_and_reads_past_ready() -> None:
    w = RunnerWorker(subprocess_runner, local_argv(), WorkerPlan(duration_s=0.05, pod="p"))
    assert w.returncode() is None  # nothing runs before the cue
    w.go(0.0)
    result = w.result(60)
    assert "started_monotonic" in result
    assert json.loads(json.dumps(result)) == result
