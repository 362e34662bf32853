"""Undo what killed runs left behind, from their journals (``conntrack-harness restore``).

Each journal entry is undone in reverse order; every undo is idempotent. Namespaces whose
names carry a run id (``cth-<6 hex>-``) of a dead run *of this state directory* are swept too,
with the processes inside them, in case a run died between a change and its journal line (it
journals first, so this is belt and braces). Journals kept in another state directory are
found through the host-global registry (see ``harness.kernel.journal``).

A ``cth-`` namespace that no journal accounts for is only mentioned by default. With
``orphans=True`` (``restore --orphans``) it is deleted when no live run owns it: the host lock
is held, so no other run can be starting. Such orphans come from a run killed before the
registry existed, or whose journal was deleted with its state directory; no record of the
original ``nf_conntrack_max`` survives them, hence the explicit ``--conntrack-max``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cthcommon.errors import RestoreFailed, UnsafeRequest
from cthcommon.netns import NETNS_RUN_DIR, run
from harness.kernel import sysctl
from harness.kernel.conntrack import kernel_default_table, max_refusal
from harness.kernel.journal import Journal, journals, stale_journals, state_dir
from harness.kernel.process import stop_pid

RUN_NS = re.compile(r"^cth-([0-9a-f]{6})-")
ETC_NETNS = Path("/etc/netns")


RUN_ID = re.compile(r"^[0-9a-f]{6}$")


@dataclass
class RestoreReport:
    journals: int = 0
    actions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        if not self.actions and not self.errors:
            if self.notes:
                return ["nothing to restore from a journal: no journal of a dead run", *self.notes]
            return ["nothing to restore: no journal of a dead run, no leftover namespace"]
        return [*self.actions, *(f"FAILED: {e}" for e in self.errors), *self.notes]


def _ns_exists(name: str) -> bool:
    return (NETNS_RUN_DIR / name).exists()


def undo_journal(j: Journal, report: RestoreReport) -> None:
    originals: dict[str, str] = {}
    for e in reversed(j.entries):
        op = e.get("op")
        try:
            if op == "process":
                if stop_pid(int(e["pid"]), e.get("start")):
                    report.actions.append(f"stopped {e.get('name')} (pid {e['pid']})")
            elif op == "netns":
                if _ns_exists(e["name"]):
                    _stop_ns_pids(e["name"], report)
                    run(["ip", "netns", "del", e["name"]])
                    report.actions.append(f"deleted namespace {e['name']}")
            elif op in ("path", "dir"):
                p = Path(e["path"])
                if p.exists():
                    shutil.rmtree(p, ignore_errors=False)
                    report.actions.append(f"removed {p}")
            elif op == "dockerd":
                from harness.kindbuild.dockerd import undo_entry

                report.actions.extend(undo_entry(e))
            elif op == "kind-cluster":
                from harness.backends.kube.kind import undo_cluster_entry

                report.actions.extend(undo_cluster_entry(e))
            elif op == "sysctl" and e.get("netns") is None:
                originals[e["key"]] = e["original"]  # earliest entry wins (reversed walk)
            elif op == "sysctl" and "ino" in e:
                _restore_in_namespace(e, report)  # earliest last (reversed walk): it wins
        except Exception as exc:  # keep going: undo as much as possible, then be loud
            report.errors.append(f"{op} {e}: {exc}")
    for key, original in originals.items():
        try:
            if sysctl.read(key) != original:
                sysctl.write(key, original)
                report.actions.append(f"restored {key} = {original}")
        except OSError as exc:
            report.errors.append(f"sysctl {key}={original}: {exc}")


def _restore_in_namespace(e: dict[str, Any], report: RestoreReport) -> None:
    """A per-namespace sysctl in a namespace named by a path (a kind node's,
    ``/proc/PID/ns/net``): put back while it is still the namespace the run changed (the same
    inode); one that is gone took its sysctls with it. (A namespace named by ``ip netns`` is
    the run's own and is deleted above.)"""
    key, ns, original = e["key"], e["netns"], e["original"]
    try:
        if sysctl.read(key, ns, inode=int(e["ino"])) != original:
            sysctl.write(key, original, ns, inode=int(e["ino"]))
            report.actions.append(f"restored {key} = {original} in {ns}")
    except FileNotFoundError:  # NamespaceGone too: the container is gone, or its PID reused
        pass


def _stop_ns_pids(ns: str, report: RestoreReport) -> None:
    """Stop every process inside a namespace the harness created (only its own run there)."""
    res = run(["ip", "netns", "pids", ns], check=False)
    for pid in (int(t) for t in res.stdout.split() if t.isdigit()):
        if stop_pid(pid, None):
            report.actions.append(f"stopped pid {pid} left in {ns}")


def _stop_workdir_pids(workdir: Path, report: RestoreReport) -> None:
    """Stop processes whose command line names a dead run's work directory (load worker)."""
    needle = str(workdir).encode() + b"/"
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmd and stop_pid(int(p.name), None):
            report.actions.append(f"stopped pid {p.name} of {workdir}")


def dead_run_ids(live_runs: set[str]) -> set[str]:
    """Runs this state directory knows of (a work directory) whose journal is gone or dead."""
    d = state_dir()
    if not d.is_dir():
        return set()
    return {p.name for p in d.iterdir() if RUN_ID.match(p.name) and p.is_dir()} - live_runs


def _harness_entries() -> Iterator[tuple[Path, str]]:
    """``cth-<run id>-`` namespaces, then their /etc/netns directories, with the run id."""
    for d in (NETNS_RUN_DIR, ETC_NETNS):
        if d.is_dir():
            for p in sorted(d.iterdir()):
                m = RUN_NS.match(p.name)
                if m:
                    yield p, m.group(1)


def _remove_entry(p: Path, report: RestoreReport) -> None:
    """Delete a namespace (stopping the processes left in it) or an /etc/netns directory."""
    if p.parent != NETNS_RUN_DIR:
        shutil.rmtree(p, ignore_errors=True)
        report.actions.append(f"removed orphan {p}")
        return
    _stop_ns_pids(p.name, report)
    res = run(["ip", "netns", "del", p.name], check=False)
    if res.returncode == 0:
        report.actions.append(f"deleted orphan namespace {p.name}")
    else:
        report.errors.append(f"namespace {p.name}: {res.stderr.strip()}")


def sweep_namespaces(dead_runs: set[str], report: RestoreReport) -> None:
    """Remove what dead runs of this state directory left outside their journals."""
    unknown: set[str] = set()
    for p, run_id in _harness_entries():
        if run_id in dead_runs:
            _remove_entry(p, report)
        elif p.parent == NETNS_RUN_DIR:
            unknown.add(run_id)
    for run_id in sorted(dead_runs):
        wd = state_dir() / run_id
        _stop_workdir_pids(wd, report)
        if wd.is_dir():
            shutil.rmtree(wd, ignore_errors=True)
            report.actions.append(f"removed orphan {wd}")
    if unknown:
        report.notes.append(
            f"left alone: cth- namespaces of {len(unknown)} run(s) no journal accounts for "
            f"({', '.join(sorted(unknown))}); 'conntrack-harness restore --orphans' deletes "
            "them unless a run owns them"
        )


def live_run_ids() -> set[str]:
    """Runs whose journal's owner process is alive (this state dir's, and registered ones)."""
    return {j.run_id for j in journals() if j.owner_alive()}


def orphan_paths() -> list[Path]:
    """``cth-`` namespaces and /etc/netns entries whose run is not live."""
    live = live_run_ids()
    return [p for p, run_id in _harness_entries() if run_id not in live]


def sweep_orphans(report: RestoreReport) -> None:
    """Delete ``cth-`` namespaces (and their processes, /etc/netns files) no live run owns."""
    for p in orphan_paths():
        _remove_entry(p, report)
    report.notes = [n for n in report.notes if not n.startswith("left alone:")]


def check_conntrack_max_floor(value: int) -> None:
    """Refuse a global table smaller than what the host itself is using, plus a margin."""
    why = max_refusal(value, int(sysctl.read("net.netfilter.nf_conntrack_count")))
    if why is not None:
        raise UnsafeRequest(why, field="--conntrack-max", value=value)


def set_conntrack_max(value: int, report: RestoreReport) -> None:
    """Put the global table size back to a value the user names (no journal recorded it)."""
    key = "net.netfilter.nf_conntrack_max"
    check_conntrack_max_floor(value)
    current = sysctl.read(key)
    if current != str(value):
        sysctl.write(key, str(value))
        report.actions.append(f"set {key} = {value} (was {current}; no journal recorded it)")
    # a run shrinks the buckets with the max (one per entry): put them back as far as the
    # kernel's own boot size, never above it (every bucket is allocated up front)
    bkey = "net.netfilter.nf_conntrack_buckets"
    want = min(value, kernel_default_table(sysctl.mem_total_bytes()))
    have = int(sysctl.read(bkey))
    if have < want:
        sysctl.write(bkey, str(want))
        report.actions.append(f"set {bkey} = {want} (was {have}; no journal recorded it)")


def restore_stale(*, sweep: bool = True, orphans: bool = False) -> RestoreReport:
    """Undo every journal whose run is dead. Call with the host lock held."""
    report = RestoreReport()
    undone: set[str] = set()
    for j in stale_journals():
        report.journals += 1
        undo_journal(j, report)
        undone.add(j.run_id)
        if not report.errors:
            j.close()
    if sweep:
        live = (
            {p.stem for p in (state_dir() / "runs").glob("*.jsonl")}
            if (state_dir() / "runs").is_dir()
            else set()
        )
        sweep_namespaces((dead_run_ids(live) | undone) - live, report)
    if orphans:
        sweep_orphans(report)
    if report.errors:
        raise RestoreFailed(
            "restore could not undo everything; the journal is kept:\n  "
            + "\n  ".join(report.errors)
        )
    return report
