"""Run a scenario: lock the host, journal every change, build the cluster once, run each
phase (steady state -> method -> steady state), and restore everything on every exit path.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from types import FrameType

from cthcommon.errors import BadInput, NotRoot, RestoreFailed, UnsafeRequest
from cthcommon.signals import deferred, installed
from harness.backendcheck import check_backend
from harness.backends.base import BackendOptions, Cluster, Progress
from harness.backends.registry import (
    HOST_KERNEL_BACKENDS,
    changes_host,
    check_backend_ready,
    check_inputs,
    make_cluster,
    root_reason,
)
from harness.backends.stages import Notice
from harness.kernel import sysctl
from harness.kernel.conntrack import max_refusal
from harness.kernel.journal import STATE_DIR_ENV, HostLock, Journal, state_dir
from harness.plan import PhasePlan, RunPlan
from harness.plan.phase import plan_phase, plan_run
from harness.restore import RestoreReport, restore_stale, undo_journal
from harness.results import record as _record
from harness.results.build import build_phase_result
from harness.results.evidence import Evidence
from harness.results.record import RunRecord, basic_environment
from harness.results.schema import Environment, PhaseResult, RunResult
from harness.scenario.model import Phase, Scenario
from harness.scenario.ownfiles import read_own_files

CT = "net.netfilter."


class Interrupted(BaseException):
    """The run was stopped by a signal; cleanup runs on the way out."""

    def __init__(self, message: str, signum: int = signal.SIGTERM) -> None:
        super().__init__(message)
        self.signum = signum


def require_root(backend: str | None = None) -> None:
    """Refuse a run that needs root without it; for a backend that changes nothing on this
    host (kubeconfig), root is not needed, but the run's journal and lock need a state
    directory this user can write."""
    if os.geteuid() == 0:
        return
    if backend is None:
        raise NotRoot()
    reason = root_reason(backend)
    if reason is not None:
        raise NotRoot(f"--backend {backend} must run as root: {reason}", field="--backend")
    d = state_dir()
    probe = next(p for p in (d, *d.parents) if p.exists())  # what mkdir -p would write into
    if not (probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)):
        raise BadInput(
            f"--backend {backend} needs no root, but the run's journal and lock go to {d}, "
            f"which this user cannot write; set {STATE_DIR_ENV} to a directory you own",
            field=STATE_DIR_ENV,
            value=str(d),
        )


@contextmanager
def signals_raise() -> Iterator[None]:
    """SIGTERM and SIGHUP become exceptions, so every ``finally`` and ``__exit__`` runs.

    A signal the run was started with *ignored* stays ignored, as SIGINT does (Python installs
    no KeyboardInterrupt handler then): ``nohup`` ignores SIGHUP so the run outlives its
    terminal, and that is what the user asked for."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(f"stopped by {signal.Signals(signum).name}", signum)

    caught = [
        s for s in (signal.SIGTERM, signal.SIGHUP) if signal.getsignal(s) is not signal.SIG_IGN
    ]
    with installed(dict.fromkeys(caught, handler)):
        yield


def check_conntrack_max(value: int, *, force: bool) -> None:
    """Never shrink the global table below what the host itself is using (plus a margin)."""
    why = max_refusal(value, int(sysctl.read(CT + "nf_conntrack_count")))
    if why is not None and not force:
        raise UnsafeRequest(
            f"{why} (pass --force to do it anyway)", field="host.nf_conntrack_max", value=value
        )


def preflight(plan: RunPlan, *, force: bool) -> None:
    """Refusals that need no host change: checked before anything is touched. Every global
    table size the run plans (the host's, node_sysctls', each phase's conntrack-sysctls
    remediation) is checked against what the host is using."""
    values = [plan.host.conntrack_max, plan.sysctls.conntrack_max]
    values += [p.sysctls.conntrack_max for p in plan.phases]
    for v in values:
        if v is not None:
            check_conntrack_max(v, force=force)


def environment(backend: str) -> Environment:
    """The host as this run sees it. Read with the host lock held: another run's changes to
    the global sysctls would otherwise be recorded as this host's."""
    keys = [
        "nf_conntrack_max",
        "nf_conntrack_buckets",
        "nf_conntrack_count",
        "nf_conntrack_tcp_timeout_time_wait",
        "nf_conntrack_udp_timeout",
    ]
    sysctls = {}
    for k in keys:
        try:
            sysctls[CT + k] = sysctl.read(CT + k)
        except OSError:
            continue
    env = basic_environment(backend)
    env["sysctls"] = sysctls
    env["tools"] = {
        t: shutil.which(t) or "missing"
        for t in ("iptables", "nft", "conntrack", "dnsmasq", "nginx")
    }
    return env


def new_run_id() -> str:
    """A fresh run id (the integration tests replace this to name their runs)."""
    return _record.new_run_id()


def _say_repaired(report: RestoreReport) -> None:
    """A run that starts on a host a killed run left changed says what it put back first."""
    if report.actions:
        print("repaired what a killed run left before starting:", file=sys.stderr)
    for line in [*report.actions, *report.notes]:
        print(f"  {line}", file=sys.stderr)


class ClusterSession:
    """One realized cluster and everything that guards it: the host lock, the run journal,
    the sysctl guard, signals turned into exceptions. Run any number of phases, then exit:
    every exit path restores, and a safety net replays the journal at the end.

    The runner uses one per scenario run; the pytest plugin keeps one for a whole session and
    resets it cheaply per test (:meth:`reset`).
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        backend: str = "netns",
        options: BackendOptions | None = None,
        force: bool = False,
        wait_s: float = 0.0,
        run_id: str | None = None,
        notice: Notice | None = None,
    ) -> None:
        """``notice`` hears the backend's setup and teardown steps (kind: minutes of them)."""
        self.scenario = scenario
        self.backend = backend
        self.options = options or BackendOptions()
        self.force = force
        self.wait_s = wait_s
        self.run_id = run_id or new_run_id()
        self.notice = notice
        self.on_host = backend in HOST_KERNEL_BACKENDS  # its nodes share this host's kernel
        # every phase planned once, up front (bad input, exit 2, before anything is built);
        # the backend realizes these plans and never plans a phase itself
        self.run_plan = plan_run(scenario)
        self.plans = {p.name: p for p in self.run_plan.phases}
        self.env: Environment | None = None
        self._stack = ExitStack()
        self.journal: Journal | None = None
        self.guard: sysctl.SysctlGuard | None = None
        self.cluster: Cluster | None = None

    def __enter__(self) -> ClusterSession:
        # every check that needs no lock comes first, and nothing is touched until all pass
        plan = self.run_plan
        check_backend(self.backend, self.scenario, self.options, plan)
        require_root(self.backend)
        if self.on_host:
            preflight(plan, force=self.force)
        check_backend_ready(self.backend, self.options, self.notice, plan)  # tools, parts
        check_inputs(self.backend, plan, self.options)  # e.g. CoreDNS parses a Corefile
        stack = self._stack
        lock = changes_host(self.backend, plan, self.options)
        stack.enter_context(HostLock(self.wait_s) if lock else nullcontext())
        stack.enter_context(signals_raise())
        try:
            self.env = environment(self.backend)  # under the lock: no other run's values
            if self.on_host:
                _say_repaired(restore_stale())
            with deferred():  # a journal that exists always has its safety net registered
                self.journal = Journal.create(self.run_id, scenario=plan.scenario, argv=sys.argv)
                stack.callback(self._safety_net, self.journal)
            self.guard = sysctl.SysctlGuard(self.journal)
            stack.enter_context(self.guard.scope())
            if self.on_host and plan.host.conntrack_max is not None:
                self.guard.set(CT + "nf_conntrack_max", plan.host.conntrack_max)
            if self.on_host and plan.host.buckets is not None:
                self.guard.set(CT + "nf_conntrack_buckets", plan.host.buckets)
            cluster = make_cluster(
                self.backend,
                plan,
                run_id=self.run_id,
                journal=self.journal,
                guard=self.guard,
                options=self.options,
                notice=self.notice,
            )
            self.cluster = stack.enter_context(cluster)
            self.env["components"] = self.cluster.components()
            self.cluster.apply_node_sysctls()
            for key in ("nf_conntrack_max", "nf_conntrack_buckets"):
                self.env["sysctls"][f"{CT}{key} (during run)"] = sysctl.read(CT + key)
        except BaseException:
            stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    @staticmethod
    def _safety_net(journal: Journal) -> None:
        """Replay our own journal. Every undo is idempotent, so after a clean teardown this
        only confirms nothing is left; after a failed one it finishes the job."""
        report = RestoreReport()
        # a second Ctrl-C or SIGTERM waits until this is done, then stops the run
        with deferred():
            undo_journal(journal, report)
            if not report.errors:
                journal.close()
        if report.errors:
            raise RestoreFailed(
                "run cleanup incomplete; journal kept at "
                f"{journal.path}:\n  " + "\n  ".join(report.errors)
            )

    def run_phase(
        self, phase: Phase, rep: int = 0, progress: Progress | None = None
    ) -> PhaseResult:
        assert self.cluster is not None, "enter the session first"
        # the run's plan, made once; a phase of the test's own (a copy with other fields) is
        # planned here, against the same scenario
        plan = self.plans.get(phase.name) if phase in self.scenario.phases else None
        plan = plan or plan_phase(self.scenario, phase)
        return _run_phase(self.cluster, plan, phase, rep, progress)

    def reset(self) -> None:
        """Cheap per-test reset: nothing but the nodes' conntrack tables carries over."""
        assert self.cluster is not None, "enter the session first"
        self.cluster.reset()


def run(
    record: RunRecord,
    scenario: Scenario,
    *,
    force: bool = False,
    wait_s: float = 0.0,
    progress: Progress | None = None,
    on_phase: Callable[[PhaseResult], None] | None = None,
    options: BackendOptions | None = None,
    notice: Notice | None = None,
) -> RunRecord:
    """Run every phase into ``record``: each phase's result, then the evidence, in memory.

    Whatever fails (a phase, the evidence, the teardown, a restore) is noted on the record
    (:meth:`RunRecord.fail`) before it propagates, so the phases measured so far can still be
    written: ``record.result()`` is then a complete result.json with verdict ``error``.
    """
    session = ClusterSession(
        scenario,
        backend=record.backend,
        options=options,
        force=force,
        wait_s=wait_s,
        run_id=record.run_id,
        notice=notice,
    )
    try:
        with session:
            record.environment = session.env
            for phase in scenario.phases:
                for rep in range(phase.repeat):
                    pr = session.run_phase(phase, rep, progress)
                    record.add_phase(pr)
                    if on_phase:
                        on_phase(pr)
            if session.cluster is not None:
                record.evidence = _evidence(session.cluster)
    except BaseException as e:
        record.fail(e)
        raise
    record.finish()
    return record


def _evidence(cluster: Cluster) -> Evidence:
    """The bundle's evidence; failing to gather it costs the bundle those files, not the run."""
    try:
        return cluster.evidence()
    except Exception as e:  # a node gone, a command failing: the measurement still stands
        print(f"conntrack-harness: evidence not captured: {e}", file=sys.stderr)
        return Evidence()


def run_scenario(
    scenario: Scenario,
    *,
    scenario_file: str | None = None,
    backend: str = "netns",
    report_dir: Path | None = None,
    force: bool = False,
    wait_s: float = 0.0,
    progress: Progress | None = None,
    on_phase: Callable[[PhaseResult], None] | None = None,
    command: str | None = None,
    options: BackendOptions | None = None,
    scenario_text: str | None = None,
) -> RunResult:
    """Run a scenario and return its result.json; with ``report_dir``, also write its reports
    (even when the run fails after a phase was measured). ``scenario_text`` is what the bug
    bundle keeps as scenario.yaml."""
    record = RunRecord(
        scenario=scenario.name,
        run_id=new_run_id(),
        backend=backend,
        command=command or " ".join(sys.argv),
        scenario_file=scenario_file,
        scenario_text=scenario_text,
        scenario_files=read_own_files(scenario, scenario_file) if scenario_file else {},
    )
    from harness.report.files import salvage, write_run

    try:
        run(
            record,
            scenario,
            force=force,
            wait_s=wait_s,
            progress=progress,
            on_phase=on_phase,
            options=options,
        )
    except BaseException:
        if report_dir is not None:
            salvage(record, report_dir)
        raise
    if report_dir is not None:
        write_run(record, report_dir)
    return record.result()


def _run_phase(
    cluster: Cluster, plan: PhasePlan, phase: Phase, rep: int, progress: Progress | None
) -> PhaseResult:
    with cluster.phase(plan) as realized:
        m = cluster.measure(realized, progress)
    return build_phase_result(phase, rep, m)
