"""Undo what killed runs left behind, from their journals (``conntrack-harness restore``).

Each journal entry is undone in reverse order; every undo is idempotent. Namespaces whose
names carry a run id (``cth-<6 hex>-``) with no live run are swept too, in case a run died
between creating a namespace and journaling it (it journals first, so this is belt and braces).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import RestoreFailed
from harness.kernel import sysctl
from harness.kernel.journal import Journal, stale_journals, state_dir
from harness.kernel.netns import NETNS_RUN_DIR, run
from harness.kernel.process import stop_pid

RUN_NS = re.compile(r"^cth-([0-9a-f]{6})-")


@dataclass
class RestoreReport:
    journals: int = 0
    actions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        if not self.actions and not self.errors:
            return ["nothing to restore: no journal of a dead run, no leftover namespace"]
        return [*self.actions, *(f"FAILED: {e}" for e in self.errors)]


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
                    run(["ip", "netns", "del", e["name"]])
                    report.actions.append(f"deleted namespace {e['name']}")
            elif op in ("path", "dir"):
                p = Path(e["path"])
                if p.exists():
                    shutil.rmtree(p, ignore_errors=False)
                    report.actions.append(f"removed {p}")
            elif op == "sysctl" and e.get("netns") is None:
                originals[e["key"]] = e["original"]  # earliest entry wins (reversed walk)
        except Exception as exc:  # keep going: undo as much as possible, then be loud
            report.errors.append(f"{op} {e}: {exc}")
    for key, original in originals.items():
        try:
            if sysctl.read(key) != original:
                sysctl.write(key, original)
                report.actions.append(f"restored {key} = {original}")
        except OSError as exc:
            report.errors.append(f"sysctl {key}={original}: {exc}")


def sweep_namespaces(live_runs: set[str], report: RestoreReport) -> None:
    if not NETNS_RUN_DIR.is_dir():
        return
    for p in sorted(NETNS_RUN_DIR.iterdir()):
        m = RUN_NS.match(p.name)
        if m and m.group(1) not in live_runs:
            res = run(["ip", "netns", "del", p.name], check=False)
            if res.returncode == 0:
                report.actions.append(f"deleted orphan namespace {p.name}")
            else:
                report.errors.append(f"namespace {p.name}: {res.stderr.strip()}")
    etc = Path("/etc/netns")
    if etc.is_dir():
        for p in sorted(etc.iterdir()):
            m = RUN_NS.match(p.name)
            if m and m.group(1) not in live_runs:
                shutil.rmtree(p, ignore_errors=True)
                report.actions.append(f"removed orphan {p}")


def restore_stale(*, sweep: bool = True) -> RestoreReport:
    """Undo every journal whose run is dead. Call with the host lock held."""
    report = RestoreReport()
    for j in stale_journals():
        report.journals += 1
        undo_journal(j, report)
        if not report.errors:
            j.close()
    if sweep:
        live = (
            {p.stem for p in (state_dir() / "runs").glob("*.jsonl")}
            if (state_dir() / "runs").is_dir()
            else set()
        )
        sweep_namespaces(live, report)
    if report.errors:
        raise RestoreFailed(
            "restore could not undo everything; the journal is kept:\n  "
            + "\n  ".join(report.errors)
        )
    return report
