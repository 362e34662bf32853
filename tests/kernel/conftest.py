"""The kernel tier (tests/kernel): root; real namespaces, rules and processes on this host."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.kernel.journal import HostLock, Journal, registry_dir
from harness.restore import RUN_NS

NETNS_DIR = Path("/run/netns")
# how long a test queues on the host lock, as `run --wait 1800` does: another helper's or
# engineer's run on this host goes first
LOCK_WAIT_S = 1800.0
RUN_NS_BYTES = re.compile(rb"cth-[0-9a-f]{6}-")


@dataclass(frozen=True)
class HostSnapshot:
    """What a harness run may touch on the host, to compare before and after."""

    conntrack_max: str
    conntrack_buckets: str
    namespaces: frozenset[str]
    etc_netns: frozenset[str]
    host_rules: int
    harness_procs: frozenset[int]
    registered_journals: frozenset[str]

    @classmethod
    def take(cls) -> HostSnapshot:
        def harness_ns(d: Path) -> frozenset[str]:
            if not d.is_dir():
                return frozenset()
            return frozenset(p.name for p in d.iterdir() if RUN_NS.match(p.name))

        rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
        procs = set()
        for p in Path("/proc").iterdir():
            if p.name.isdigit():
                try:
                    cmd = (p / "cmdline").read_bytes()
                except OSError:
                    continue
                if RUN_NS_BYTES.search(cmd) or b"loadgen.worker" in cmd:
                    procs.add(int(p.name))
        return cls(
            conntrack_max=Path("/proc/sys/net/netfilter/nf_conntrack_max").read_text().strip(),
            conntrack_buckets=Path("/proc/sys/net/netfilter/nf_conntrack_buckets")
            .read_text()
            .strip(),
            namespaces=harness_ns(NETNS_DIR),
            etc_netns=harness_ns(Path("/etc/netns")),
            host_rules=sum(1 for ln in rules.splitlines() if "KUBE-" in ln or "CTH-" in ln),
            harness_procs=frozenset(procs),
            registered_journals=frozenset(
                p.name for p in (registry_dir().iterdir() if registry_dir().is_dir() else ())
            ),
        )

    def leftovers_since(self, before: HostSnapshot) -> list[str]:
        out = []
        if self.conntrack_max != before.conntrack_max:
            out.append(f"nf_conntrack_max {before.conntrack_max} -> {self.conntrack_max}")
        if self.conntrack_buckets != before.conntrack_buckets:
            out.append(
                f"nf_conntrack_buckets {before.conntrack_buckets} -> {self.conntrack_buckets}"
            )
        for label, a, b in (
            ("namespace", before.namespaces, self.namespaces),
            ("/etc/netns", before.etc_netns, self.etc_netns),
            ("process", before.harness_procs, self.harness_procs),
            ("registered journal", before.registered_journals, self.registered_journals),
        ):
            extra = set(b) - set(a)
            if extra and label == "process":
                out.append(f"{label}: {[_cmdline(pid) for pid in sorted(extra)]}")
            elif extra:
                out.append(f"{label}: {sorted(extra)}")
        if self.host_rules != before.host_rules:
            out.append(f"host iptables rules {before.host_rules} -> {self.host_rules}")
        return out


def _cmdline(pid: int) -> str:
    """``PID: argv`` of a leftover process, so a failure says which one it was."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"{pid}: (gone)"
    return f"{pid}: {' '.join(a.decode(errors='replace') for a in argv if a)[:300]}"


@pytest.fixture
def host_unchanged() -> Iterator[HostSnapshot]:
    """Fails the test if anything of the harness is left on the host afterwards.

    Leftovers are then repaired with ``conntrack-harness restore`` (which finds a killed run's
    journal through the host-global registry), so one failure does not confound the tests
    after it; the test still fails."""
    before = HostSnapshot.take()
    yield before
    leftovers = HostSnapshot.take().leftovers_since(before)
    if leftovers:
        subprocess.run(
            [sys.executable, "-m", "harness.cli", "restore", "--wait", "60"],
            capture_output=True,
            check=False,
        )
    assert not leftovers, leftovers


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Journal]:
    """A journal in a private state dir, holding that dir's lock."""
    monkeypatch.setenv("CONNTRACK_HARNESS_STATE_DIR", str(tmp_path / "state"))
    with HostLock(wait_s=LOCK_WAIT_S):
        j = Journal.create(os.urandom(3).hex())
        yield j
        j.close()


@pytest.fixture
def host_lock() -> Iterator[None]:
    """The host lock for the test, queued on like every run (``run --wait``): a test that
    builds namespaces outside a run (``bench.topo``) must not have another run's start-up
    sweep them, or shrink the global table under it. Not with ``journal``, which holds it."""
    with HostLock(wait_s=LOCK_WAIT_S):
        yield


@pytest.fixture(scope="module")
def host_lock_module() -> Iterator[None]:
    """:func:`host_lock` for a module whose testbed lives as long as the module."""
    with HostLock(wait_s=LOCK_WAIT_S):
        yield
