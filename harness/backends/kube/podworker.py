"""A client pod's load worker, started on cue (``python3 -m loadgen.worker --cue`` through
``kubectl exec``).

``kubectl exec`` and the worker's own start take 1.9-2.8 s here, and differ from pod to pod.
So each phase launches every pod's worker first, with its plan on stdin, and waits until each
says ``ready`` (:data:`loadgen.worker.READY`, the first line of its stdout); then, after the
aged warm-up, one line on every stdin starts them all :data:`START_IN_S` later, each on its own
clock (a real node's clock is not this host's). The worker's result is the rest of its stdout.

A fixed lead after the launch (3.5 s, before this) had to cover the slowest start, and the
phase paid it every time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from typing import IO, Protocol, cast

from cthcommon.errors import BackendError, MissingTool
from harness.backends.kube.proc import Runner
from loadgen.worker import READY, WorkerPlan, WorkerResult, cue_line

# from the cue to the load: the cue's way through kubectl and the API to the pod takes
# milliseconds; the workers then start together, each this long after reading it
START_IN_S = 0.2


class Handle(Protocol):
    """What the phase needs of a launched worker (a fake in the unit tests)."""

    pod: str

    def wait_ready(self, deadline: float) -> None: ...
    def go(self, start_in_s: float) -> None: ...
    def returncode(self) -> int | None: ...
    def result(self, timeout_s: float) -> WorkerResult: ...
    def stop(self) -> None: ...


Spawn = Callable[[Sequence[str]], "subprocess.Popen[str]"]


def _spawn(argv: Sequence[str]) -> subprocess.Popen[str]:
    args = list(argv)
    if shutil.which(args[0]) is None:
        raise MissingTool(f"{args[0]} is not on PATH", tool=args[0])
    return subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


class PodWorker:
    """One pod's worker process (``kubectl exec -i``), from launch to its answer."""

    def __init__(self, argv: Sequence[str], plan: WorkerPlan, spawn: Spawn = _spawn) -> None:
        self.pod = plan.pod
        self._ready = threading.Event()
        self._out: list[str] = []
        self._err: list[str] = []
        self._p = spawn(argv)
        self._readers = [
            threading.Thread(target=self._read_out, daemon=True, name=f"worker-out-{self.pod}"),
            threading.Thread(
                target=self._drain,
                args=(self._p.stderr, self._err),
                daemon=True,
                name=f"worker-err-{self.pod}",
            ),
        ]
        for t in self._readers:
            t.start()
        try:
            self._stdin.write(json.dumps(plan.to_json()) + "\n")
            self._stdin.flush()
        except OSError:  # it died at once: wait_ready says why, from its stderr
            pass

    @property
    def _stdin(self) -> IO[str]:
        return cast(IO[str], self._p.stdin)

    def _read_out(self) -> None:
        out = cast(IO[str], self._p.stdout)
        first = out.readline()
        if first.strip() == READY:
            self._ready.set()
        else:
            self._out.append(first)
        self._drain(out, self._out)

    @staticmethod
    def _drain(stream: IO[str] | None, into: list[str]) -> None:
        if stream is not None:
            for chunk in iter(lambda: stream.read(65536), ""):
                into.append(chunk)

    def _stderr(self) -> str:
        return "".join(self._err)[-500:]

    def wait_ready(self, deadline: float) -> None:
        """Until the worker said ``ready``; a worker that ended or took past ``deadline``
        (monotonic) is the backend's failure, with what it printed."""
        while not self._ready.wait(0.05):
            if self._p.poll() is not None:
                self._readers[1].join(1)
                raise BackendError(
                    f"the load worker in {self.pod} ended before it was ready "
                    f"(exit {self._p.returncode}; an image older than --cue?)",
                    stdout="".join(self._out)[-500:],
                    stderr=self._stderr(),
                )
            if time.monotonic() > deadline:
                raise BackendError(
                    f"the load worker in {self.pod} was not ready in time", stderr=self._stderr()
                )

    def go(self, start_in_s: float) -> None:
        """Start the load ``start_in_s`` after the worker reads this."""
        try:
            self._stdin.write(cue_line(start_in_s))
            self._stdin.close()
        except OSError as e:
            raise BackendError(
                f"the load worker in {self.pod} went away before its start ({e})",
                stderr=self._stderr(),
            ) from e

    def returncode(self) -> int | None:
        """None while it runs."""
        return self._p.poll()

    def result(self, timeout_s: float) -> WorkerResult:
        try:
            code = self._p.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired as e:
            self.stop()
            raise BackendError(
                f"the load worker in {self.pod} did not answer in {timeout_s:.0f}s"
            ) from e
        for t in self._readers:
            t.join(5)
        return answer(self.pod, code, "".join(self._out), self._stderr())

    def stop(self) -> None:
        """Kill kubectl by its PID if it still runs (the pod's worker ends with its exec)."""
        if self._p.poll() is None:
            self._p.kill()
            self._p.wait(timeout=10)


class RunnerWorker:
    """A worker run in one go through a plain :class:`.proc.Runner` (the seam the unit tests
    fake): ready at once; its plan and the cue go
    in together, and the command runs to its answer when it is first polled after the cue."""

    def __init__(self, runner: Runner, argv: Sequence[str], plan: WorkerPlan) -> None:
        self.pod = plan.pod
        self._run, self._argv = runner, list(argv)
        self._plan_line = json.dumps(plan.to_json())
        self._budget = plan.duration_s + 120
        self._input: str | None = None
        self._stdout = self._stderr = ""
        self._code: int | None = None

    def wait_ready(self, deadline: float) -> None:
        pass

    def go(self, start_in_s: float) -> None:
        self._input = f"{self._plan_line}\n{cue_line(start_in_s)}"

    def returncode(self) -> int | None:
        if self._input is None:
            return None
        if self._code is None:
            out = self._run(self._argv, input=self._input, timeout_s=self._budget, check=False)
            self._code, self._stdout, self._stderr = out.returncode, out.stdout, out.stderr
        return self._code

    def result(self, timeout_s: float) -> WorkerResult:
        code = self.returncode()  # runs the command, the first time after the cue
        ready, _, rest = self._stdout.partition("\n")  # past the ready line, as PodWorker reads
        stdout = rest if ready.strip() == READY else self._stdout
        return answer(self.pod, code, stdout, self._stderr[-500:])

    def stop(self) -> None:
        pass


def answer(pod: str, code: int | None, stdout: str, stderr: str) -> WorkerResult:
    """A finished worker's result: its JSON object; a failed exit or anything else printed is
    the backend's failure, with what it printed."""
    if code != 0:
        raise BackendError(
            f"the load worker in {pod} failed (exit {code})", stdout=stdout[-500:], stderr=stderr
        )
    try:
        result = json.loads(stdout)
    except json.JSONDecodeError as e:
        raise BackendError(
            f"the load worker in {pod} did not print JSON", stdout=stdout[-500:], stderr=stderr
        ) from e
    if not isinstance(result, dict):
        raise BackendError(
            f"the load worker in {pod} printed {type(result).__name__}, not an object"
        )
    return cast(WorkerResult, result)
