"""The journal, the lock and the sysctl guard's bookkeeping, without root (a fake /proc/sys)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cthcommon.errors import LockHeld, RestoreFailed, UnsafeRequest
from cthcommon.netns import NamespaceGone
from harness.kernel import sysctl
from harness.kernel.journal import HostLock, Journal, registry_dir, stale_journals


@pytest.fixture(autouse=True)
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONNTRACK_HARNESS_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("CONNTRACK_HARNESS_LOCK", str(tmp_path / "lock"))
    return tmp_path


@pytest.fixture
def fake_sysctls(monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str | None, str], str]:
    values = {
        (None, "net.netfilter.nf_conntrack_max"): "262144",
        ("ns1", "net.netfilter.nf_conntrack_tcp_timeout_time_wait"): "120",
    }
    writes: list[tuple[str | None, str, str]] = []

    def read(key: str, netns: str | None = None, *, inode: int | None = None) -> str:
        return values[(netns, key)]

    def write(key: str, value: str, netns: str | None = None, *, inode: int | None = None) -> None:
        writes.append((netns, key, value))
        values[(netns, key)] = value

    monkeypatch.setattr(sysctl, "read", read)
    monkeypatch.setattr(sysctl, "write", write)
    return values


def test_journal_is_written_before_the_change(fake_sysctls: dict, state: Path) -> None:
    j = Journal.create("abc123")
    guard = sysctl.SysctlGuard(j)
    guard.set("net.netfilter.nf_conntrack_max", 4096)
    on_disk = [json.loads(x) for x in j.path.read_text().splitlines()]
    assert on_disk[0]["op"] == "run"
    assert on_disk[1] == {
        "op": "sysctl",
        "key": "net.netfilter.nf_conntrack_max",
        "netns": None,
        "original": "262144",
    }
    assert fake_sysctls[(None, "net.netfilter.nf_conntrack_max")] == "4096"


def test_only_the_first_original_is_journaled(fake_sysctls: dict) -> None:
    j = Journal.create("abc124")
    guard = sysctl.SysctlGuard(j)
    guard.set("net.netfilter.nf_conntrack_max", 4096)
    guard.set("net.netfilter.nf_conntrack_max", 65536)
    originals = [e["original"] for e in j.entries if e["op"] == "sysctl"]
    assert originals == ["262144"]


def test_scopes_restore_their_own_changes_in_reverse(fake_sysctls: dict) -> None:
    key, tw = "net.netfilter.nf_conntrack_max", "net.netfilter.nf_conntrack_tcp_timeout_time_wait"
    guard = sysctl.SysctlGuard(Journal.create("abc125"))
    with guard.scope():
        guard.set(key, 4096)
        with guard.scope():
            guard.set(key, 65536)
            guard.set(tw, 30, netns="ns1")
            assert fake_sysctls[(None, key)] == "65536"
        assert fake_sysctls[(None, key)] == "4096"
        assert fake_sysctls[("ns1", tw)] == "120"
    assert fake_sysctls[(None, key)] == "262144"


def test_scope_restores_on_exception(fake_sysctls: dict) -> None:
    guard = sysctl.SysctlGuard(Journal.create("abc126"))
    with pytest.raises(ZeroDivisionError), guard.scope():
        guard.set("net.netfilter.nf_conntrack_max", 4096)
        _ = 1 / 0
    assert fake_sysctls[(None, "net.netfilter.nf_conntrack_max")] == "262144"


def test_global_sysctl_cannot_be_set_in_a_namespace(fake_sysctls: dict) -> None:
    guard = sysctl.SysctlGuard(Journal.create("abc127"))
    with pytest.raises(UnsafeRequest):
        guard.set("net.netfilter.nf_conntrack_max", 4096, netns="ns1")


def test_failed_restore_is_loud(fake_sysctls: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    guard = sysctl.SysctlGuard(Journal.create("abc128"))
    guard.set("net.netfilter.nf_conntrack_max", 4096)

    def broken(key: str, value: str, netns: str | None = None, **_kw: object) -> None:
        raise PermissionError("read-only")

    monkeypatch.setattr(sysctl, "write", broken)
    with pytest.raises(RestoreFailed, match="nf_conntrack_max"):
        guard.restore_all()


def test_journal_of_a_dead_owner_is_stale_and_torn_lines_are_skipped(state: Path) -> None:
    j = Journal.create("dead01")
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(child.stdout)
    lines = j.path.read_text().splitlines()
    head = json.loads(lines[0]) | {"pid": dead_pid}
    j.path.write_text(json.dumps(head) + "\n" + '{"op": "netns", "na')  # torn last line
    stale = list(stale_journals())
    assert [s.run_id for s in stale] == ["dead01"]
    assert stale[0].entries == [head]
    live = Journal.create("live01")
    assert "live01" not in [s.run_id for s in stale_journals()]
    live.close()
    assert not live.path.exists()


def _kill_owner(j: Journal) -> None:
    """Rewrite the journal's head so that its owner is a process that has exited."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = j.path.read_text().splitlines()
    head = json.loads(lines[0]) | {"pid": int(child.stdout)}
    j.path.write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n")


def test_a_journal_kept_in_another_state_dir_is_found_through_the_registry(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNTRACK_HARNESS_STATE_DIR", str(state / "a"))
    j = Journal.create("aaa001")
    assert (registry_dir() / "aaa001").read_text() == str(j.path.resolve())
    _kill_owner(j)
    monkeypatch.setenv("CONNTRACK_HARNESS_STATE_DIR", str(state / "b"))
    found = list(stale_journals())
    assert [s.run_id for s in found] == ["aaa001"]
    assert found[0].path == j.path.resolve()
    found[0].close()
    assert not j.path.exists()
    assert not registry_dir().exists()  # the last run unregistered: nothing stays in /run


def test_registry_entries_whose_journal_is_gone_are_dropped(state: Path) -> None:
    j = Journal.create("aaa002")
    keep = Journal.create("aaa003")
    j.path.unlink()  # e.g. its state dir was a tmpdir that was deleted
    assert [s.run_id for s in stale_journals()] == []  # aaa003's owner (us) is alive
    assert sorted(p.name for p in registry_dir().iterdir()) == ["aaa003"]
    keep.close()
    assert not registry_dir().exists()


def test_second_lock_is_refused_naming_the_holder() -> None:
    with HostLock(), pytest.raises(LockHeld, match=r"pid \d+"):
        HostLock(wait_s=0.3).acquire()
    with HostLock():  # released: can be taken again
        pass


# --- namespaces named by a path (/proc/PID/ns/net: kind's nodes) -----------------------------
TW = "net.netfilter.nf_conntrack_tcp_timeout_time_wait"
NODE = "/proc/4242/ns/net"


class PathNamespaces:
    """Path-named namespaces by inode: what is at a path can change (the container is gone,
    its PID reused) and the guard must notice."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.at: dict[str, int] = {NODE: 7001}  # path -> inode of the namespace there
        self.values: dict[tuple[int | None, str], str] = {(7001, TW): "120", (None, TW): "60"}
        self.writes: list[tuple[int | None, str, str]] = []
        monkeypatch.setattr(sysctl, "netns_inode", lambda ns: self.at[ns])
        monkeypatch.setattr(sysctl, "read", self.read)
        monkeypatch.setattr(sysctl, "write", self.write)

    def _ino(self, netns: str | None, inode: int | None) -> int | None:
        if netns is None:
            return None
        if netns not in self.at:
            raise FileNotFoundError(netns)
        if inode is not None and self.at[netns] != inode:
            raise NamespaceGone(netns)
        return self.at[netns]

    def read(self, key: str, netns: str | None = None, *, inode: int | None = None) -> str:
        return self.values[(self._ino(netns, inode), key)]

    def write(
        self, key: str, value: str, netns: str | None = None, *, inode: int | None = None
    ) -> None:
        ino = self._ino(netns, inode)
        self.writes.append((ino, key, value))
        self.values[(ino, key)] = value


def test_a_path_named_namespace_is_journaled_with_its_inode_and_restored(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ns = PathNamespaces(monkeypatch)
    j = Journal.create("path01")
    guard = sysctl.SysctlGuard(j)
    with guard.scope():
        guard.set(TW, 7, NODE)
        guard.set(TW, 3, NODE)
        assert ns.values[(7001, TW)] == "3"
    assert ns.values[(7001, TW)] == "120"
    entries = [e for e in j.entries if e["op"] == "sysctl"]
    assert entries == [{"op": "sysctl", "key": TW, "netns": NODE, "original": "120", "ino": 7001}]


@pytest.mark.parametrize("gone", ["missing", "pid reused"])
def test_a_gone_path_namespace_is_skipped_quietly_and_never_written_elsewhere(
    monkeypatch: pytest.MonkeyPatch, gone: str
) -> None:
    ns = PathNamespaces(monkeypatch)
    guard = sysctl.SysctlGuard(Journal.create("path02"))
    guard.set(TW, 7, NODE)
    if gone == "missing":
        del ns.at[NODE]
    else:  # the path now names another namespace (with its own value)
        ns.at[NODE] = 7002
        ns.values[(7002, TW)] = "99"
    ns.writes.clear()
    guard.restore_all()  # no RestoreFailed
    assert ns.writes == []


def test_a_host_value_that_cannot_be_restored_is_loud_next_to_a_gone_namespace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ns = PathNamespaces(monkeypatch)
    guard = sysctl.SysctlGuard(Journal.create("path03"))
    guard.set(TW, 30)  # a host value (this fake keeps it under inode None)
    guard.set(TW, 7, NODE)
    del ns.at[NODE]

    def broken(key: str, value: str, netns: str | None = None, **_kw: object) -> None:
        raise FileNotFoundError(key)

    monkeypatch.setattr(sysctl, "write", broken)
    with pytest.raises(RestoreFailed, match="missing"):
        guard.restore_all()


@pytest.mark.parametrize("gone", [None, "missing", "pid reused"])
def test_restore_of_a_killed_run_puts_a_path_namespace_back_only_if_it_is_the_same(
    monkeypatch: pytest.MonkeyPatch, gone: str | None
) -> None:
    from harness import restore

    ns = PathNamespaces(monkeypatch)
    j = Journal.create("path04")
    guard = sysctl.SysctlGuard(j)
    guard.set(TW, 9, NODE)
    guard.set(TW, 4, NODE)
    if gone == "missing":
        del ns.at[NODE]
    elif gone == "pid reused":
        ns.at[NODE] = 7002
        ns.values[(7002, TW)] = "4"
    ns.writes.clear()
    report = restore.RestoreReport()
    restore.undo_journal(Journal.load(j.path), report)
    assert report.errors == []
    if gone is None:
        assert ns.values[(7001, TW)] == "120"
        assert ns.writes == [(7001, TW, "120")]
    else:
        assert ns.writes == []
