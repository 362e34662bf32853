"""Run the real CLI in a subprocess and check, afterwards, that the run left nothing behind.

Two things make this safe on a machine shared with other engineers' runs:

- **A stand-in for the global sysctls.** Each CLI process runs in its own mount namespace
  (``unshare -m``) where a plain file is bind-mounted over
  ``/proc/sys/net/netfilter/nf_conntrack_{max,buckets}``. The harness reads, journals, writes
  and restores that path exactly as it would the kernel's, but the host's real table size is
  never touched (other runs on this kernel keep theirs). ``/run/netns`` stays shared, so the
  namespaces the run creates are visible here and to ``restore``.
- **A known run id.** The CLI is started through a two-line bootstrap that fixes
  ``harness.runner.new_run_id``, so every namespace, file and process of the run can be told
  apart from other engineers' ``cth-`` runs, which this check must neither count nor touch.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import secrets
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

CT = Path("/proc/sys/net/netfilter")
FAKE_KEYS = ("nf_conntrack_max", "nf_conntrack_buckets")
MARK_ENV = "CTH_TEST_MARK"

BOOT = (
    "import sys, harness.runner as r\n"
    "rid = sys.argv.pop(1)\n"
    "r.new_run_id = lambda: rid\n"
    "from harness.cli import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)

_WRAP = (
    "set -e; mount --make-rprivate /proc; "
    'for k in nf_conntrack_max nf_conntrack_buckets; do mount --bind "$CTH_FAKE/$k" '
    '"/proc/sys/net/netfilter/$k"; done; exec "$@"'
)


def new_run_id() -> str:
    """Six characters like the harness's own ids, but never six hex digits.

    Older harness builds (still in use on a shared machine) sweep every ``cth-<6 hex>-``
    namespace that their own state directory does not know, which would delete these test
    runs' live namespaces under them. The ``zq`` keeps them out of that pattern.
    """
    return "zq" + secrets.token_hex(2)


@dataclass
class FakeSysctls:
    """Files standing in for the host-global conntrack sysctls (see the module docstring)."""

    dir: Path

    @classmethod
    def create(cls, d: Path) -> FakeSysctls:
        d.mkdir(parents=True, exist_ok=True)
        for k in FAKE_KEYS:
            (d / k).write_text((CT / k).read_text())
        return cls(d)

    def values(self) -> dict[str, str]:
        return {k: (self.dir / k).read_text().strip() for k in FAKE_KEYS}

    def argv(self, inner: list[str]) -> list[str]:
        return ["unshare", "-m", "--propagation", "unchanged", "sh", "-c", _WRAP, "sh", *inner]

    def env(self, state: Path, mark: str) -> dict[str, str]:
        return {
            **os.environ,
            "CTH_FAKE": str(self.dir),
            "CONNTRACK_HARNESS_STATE_DIR": str(state),
            MARK_ENV: mark,
        }


def cli_argv(run_id: str | None, *args: str) -> list[str]:
    if run_id is None:
        return [sys.executable, "-m", "harness.cli", *args]
    return [sys.executable, "-c", BOOT, run_id, *args]


def _read(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except OSError:
        return b""


@dataclass
class RunWatch:
    """Polls, while a run is going, what it has made: namespace inodes and timestamps."""

    run_id: str
    t0: float = field(default_factory=time.monotonic)
    inodes: set[int] = field(default_factory=set)
    first_ns: float | None = None
    load_start: float | None = None
    load_end: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> RunWatch:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        prefix = f"cth-{self.run_id}-"
        needle = f"/{self.run_id}/".encode()
        while not self._stop.is_set():
            now = time.monotonic() - self.t0
            for p in Path("/run/netns").glob(prefix + "*"):
                try:
                    self.inodes.add(os.stat(p).st_ino)
                except OSError:
                    continue
                if self.first_ns is None:
                    self.first_ns = now
            worker = any(
                b"loadgen.worker" in c and needle in c
                for c in (_read(p) for p in Path("/proc").glob("[0-9]*/cmdline"))
            )
            if worker and self.load_start is None:
                self.load_start = now
            if not worker and self.load_start is not None and self.load_end is None:
                self.load_end = now
            time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()


@dataclass(frozen=True)
class Snapshot:
    """Everything one run (known by its id, state dir and marker) could leave on the host."""

    sysctls: dict[str, str]
    namespaces: frozenset[str]
    etc_netns: frozenset[str]
    procs: frozenset[str]
    host_links: frozenset[str]
    host_ruleset: str
    journals: frozenset[str]
    lock_held_by: str
    state_files: frozenset[str]

    @classmethod
    def take(
        cls, fake: FakeSysctls, state: Path, run_ids: set[str], inodes: set[int], mark: str
    ) -> Snapshot:
        ns_re = re.compile(r"^cth-(" + "|".join(sorted(run_ids)) + ")-") if run_ids else None

        def mine(d: Path) -> frozenset[str]:
            if ns_re is None or not d.is_dir():
                return frozenset()
            return frozenset(p.name for p in d.iterdir() if ns_re.match(p.name))

        procs = set()
        me = os.getpid()
        marker = f"{MARK_ENV}={mark}".encode()
        state_b = str(state).encode()
        for p in Path("/proc").iterdir():
            if not p.name.isdigit() or int(p.name) == me:
                continue
            stat = _read(p / "stat")
            if not stat or stat[stat.rindex(b")") + 2 :].startswith(b"Z"):
                continue
            cmd = _read(p / "cmdline")
            hit = (
                marker in _read(p / "environ")
                or state_b in cmd
                or (ns_re is not None and ns_re.search(cmd.decode(errors="replace")) is not None)
            )
            if not hit:
                try:
                    hit = os.stat(p / "ns" / "net").st_ino in inodes
                except OSError:
                    hit = False
            if hit:
                text = cmd.replace(b"\0", b" ").decode(errors="replace")[:80]
                procs.add(f"{p.name}:{text}")
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
        rules = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
        lock = state / "lock"
        held = ""
        if lock.exists():
            fd = os.open(lock, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                fcntl.flock(fd, fcntl.LOCK_UN)
            except OSError:
                held = lock.read_text().strip() or "held"
            finally:
                os.close(fd)
        files = (
            frozenset(
                str(p.relative_to(state))
                for p in state.rglob("*")
                if p.name != "lock" and p != state / "runs"
            )
            if state.is_dir()
            else frozenset()
        )
        return cls(
            sysctls=fake.values(),
            namespaces=mine(Path("/run/netns")),
            etc_netns=mine(Path("/etc/netns")),
            procs=frozenset(procs),
            host_links=frozenset(
                ln.split(":")[1].strip().split("@")[0] for ln in links.splitlines() if ":" in ln
            ),
            host_ruleset=hashlib.sha256(rules.encode()).hexdigest(),
            journals=frozenset(p.name for p in state.glob("runs/*.jsonl")),
            lock_held_by=held,
            state_files=files,
        )

    def leftovers_since(self, before: Snapshot) -> list[str]:
        out = []
        for k, v in self.sysctls.items():
            if v != before.sysctls.get(k):
                out.append(f"{k}: {before.sysctls.get(k)} -> {v}")
        for label, items in (
            ("namespace", self.namespaces),
            ("/etc/netns", self.etc_netns),
            ("process", self.procs),
            ("journal", self.journals),
            ("state file", self.state_files),
        ):
            if items:
                out.append(f"{label}: {sorted(items)}")
        new_links = self.host_links - before.host_links
        if new_links:
            out.append(f"host interface: {sorted(new_links)}")
        if self.host_ruleset != before.host_ruleset:
            out.append("host nft/iptables ruleset changed")
        if self.lock_held_by:
            out.append(f"lock still held ({self.lock_held_by})")
        return out
