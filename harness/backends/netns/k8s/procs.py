"""The component processes of one cluster and their files: journaled before they exist,
stopped by PID and removed in reverse on :meth:`Components.close` (idempotent)."""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path

from cthcommon.errors import BackendError
from harness.kernel.journal import Journal
from harness.kernel.process import Proc, spawn, stop_pid, stop_pids
from harness.kernel.stacked import Stacked

NETNS_ETC = Path("/etc/netns")
GRACE_S = 2.0
# at teardown nothing is measured any more: a graceful exit (CoreDNS's lameduck waits 5 s)
# would only make every run longer
TEARDOWN_GRACE_S = 1.0


class Components(Stacked):
    """Processes and files of the component runners (kube-proxy, CoreDNS, node-cache)."""

    def __init__(self, journal: Journal, workdir: Path) -> None:
        self.journal = journal
        self.dir = workdir / "components"
        self.procs: dict[str, Proc] = {}
        self._stack = ExitStack()
        self._made_dir = False

    def close(self) -> None:
        # every process at once, in one short grace period; then the files, in reverse
        stop_pids([(p.pid, p.start) for p in self.procs.values()], TEARDOWN_GRACE_S)
        self._stack.close()
        self.procs.clear()

    def _workdir(self) -> Path:
        if not self._made_dir:
            for d in (self.dir.parent, self.dir):  # the run's workdir too, when it is ours
                if not d.exists():
                    self.journal.record("dir", path=str(d))
                    d.mkdir()
                    self._stack.callback(shutil.rmtree, d, True)
            self._made_dir = True
        return self.dir

    def file(self, name: str, text: str) -> Path:
        path = self._workdir() / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    def netns_file(self, ns: str, name: str, text: str) -> Path:
        """``/etc/netns/NS/NAME``: what ``ip netns exec`` mounts over ``/etc/NAME``."""
        d = NETNS_ETC / ns
        if not d.exists():
            self.journal.record("path", path=str(d))
            d.mkdir(parents=True)
            self._stack.callback(shutil.rmtree, d, True)
        (d / name).write_text(text)
        return d / name

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        netns: str,
        *,
        env: Mapping[str, str] | None = None,
        grace_s: float = GRACE_S,
    ) -> Proc:
        if name in self.procs and self.procs[name].alive():
            raise BackendError(f"{name} is already running (pid {self.procs[name].pid})")
        full = list(argv)
        if env:  # through env(1): the spawn primitive passes the harness's own environment
            full = ["env", *(f"{k}={v}" for k, v in sorted(env.items())), *full]
        proc = spawn(self.journal, name, full, netns=netns, log=self._workdir() / f"{name}.log")
        self.procs[name] = proc
        self._stack.callback(stop_pid, proc.pid, proc.start, grace_s)
        return proc

    def stop(self, name: str, grace_s: float = GRACE_S) -> None:
        proc = self.procs.pop(name, None)
        if proc is not None:
            stop_pid(proc.pid, proc.start, grace_s)
