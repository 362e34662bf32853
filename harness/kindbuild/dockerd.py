"""A private ``dockerd`` for kind: started when a kind run needs it, stopped by PID after.

It keeps its images and containers under the harness cache (``<cache>/docker/data``), its
sockets and run state under ``<cache>/docker/run``, and never touches ``/var/lib/docker`` or
the system's ``/run/docker.sock``. It runs with ``--iptables=false --ip6tables=false
--ip-forward=false --bridge=none``: kind's nodes sit on one user bridge network (``kind``) and
reach each other at layer 2, and the host reaches them locally, so dockerd needs neither NAT
nor forwarding and writes nothing into the host's filter table.

The host is still checked, not trusted: ``iptables-save`` is taken before start and after stop,
and whatever docker added (``DOCKER*`` chains, their jumps, a ``FORWARD`` policy of DROP) is
undone (:mod:`harness.kindbuild.hostfirewall`). The host-global sysctls that dockerd or a
kind node's kubelet may write (forwarding, ``kernel.panic``, ``vm.overcommit_memory`` ...) are
journaled before start and put back after stop. A killed run leaves a ``dockerd`` journal
entry that :func:`undo_entry` (called by ``conntrack-harness restore``) replays.

While it runs, ``DOCKER_HOST`` points at its socket and ``PATH`` starts with a directory whose
``docker`` is Debian's client (``/usr/bin/docker``): kind calls ``docker`` by name.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from cthcommon.errors import BackendError, MissingTool, RestoreFailed
from harness.backends.kube.proc import environ_set
from harness.kernel import sysctl
from harness.kernel.journal import Journal
from harness.kernel.process import Proc, spawn, stop_pid
from harness.kindbuild import hostfirewall, runcwrap

DOCKERD = "/usr/sbin/dockerd"
DOCKER = "/usr/bin/docker"
RUNC = "/usr/sbin/runc"
RUNTIME = "cth-runc"
CACHE_ENV = "CONNTRACK_HARNESS_CACHE"
DEFAULT_CACHE = Path("/var/cache/conntrack-harness")

# Host-global knobs that dockerd (forwarding), a kind node's kubelet (panic, overcommit, keys),
# its systemd (file-max, which systemd 252 raises at boot even in a container) or
# systemd-sysctl (pid_max, protected_*) may write through a privileged container's /proc/sys.
# Missing ones are skipped.
WATCHED_SYSCTLS = (
    "net.ipv4.ip_forward",
    "net.ipv6.conf.all.forwarding",
    "net.ipv6.conf.default.forwarding",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
    "kernel.panic",
    "kernel.panic_on_oops",
    "vm.overcommit_memory",
    "kernel.keys.root_maxkeys",
    "kernel.keys.root_maxbytes",
    "fs.inotify.max_user_watches",
    "fs.inotify.max_user_instances",
    "kernel.pid_max",
    "fs.file-max",
    "fs.nr_open",
    "fs.protected_fifos",
    "fs.protected_hardlinks",
    "fs.protected_regular",
    "fs.protected_symlinks",
)
# nf_conntrack_max/buckets are the run's sysctl guard's (journaled, restored by it), not ours.

DOCKER_LINK = re.compile(r"^(br-[0-9a-f]{12}|veth[0-9a-f]{7}|docker\d+)$")
CGROUP_PARENT = "cth-docker"  # every container's cgroup: /sys/fs/cgroup/<controller>/cth-docker/
CGROUP_ROOT = Path("/sys/fs/cgroup")
FLAGS = (
    f"--cgroup-parent=/{CGROUP_PARENT}",
    "--iptables=false",
    "--ip6tables=false",
    "--ip-forward=false",
    "--ip-masq=false",
    "--bridge=none",
    "--userland-proxy=true",
    "--storage-driver=overlay2",
    "--log-level=warn",
)


@dataclass(frozen=True)
class DockerdPaths:
    root: Path

    @classmethod
    def default(cls) -> DockerdPaths:
        cache = Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)
        return cls(cache / "docker")

    @property
    def data_root(self) -> Path:
        return self.root / "data"

    @property
    def exec_root(self) -> Path:
        return self.root / "run"

    @property
    def socket(self) -> Path:
        return self.exec_root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    @property
    def runc_wrapper(self) -> Path:
        return self.bin_dir / "runc-bounded"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    def argv(self) -> list[str]:
        return [
            DOCKERD,
            f"--data-root={self.data_root}",
            f"--exec-root={self.exec_root}",
            f"--pidfile={self.exec_root / 'dockerd.pid'}",
            f"--host={self.host}",
            f"--add-runtime={RUNTIME}={self.runc_wrapper}",
            f"--default-runtime={RUNTIME}",
            *FLAGS,
        ]


def _iptables_save() -> str:
    return subprocess.run(
        ["iptables-save"], capture_output=True, text=True, check=True, timeout=30
    ).stdout


def watched_sysctls() -> dict[str, str]:
    out = {}
    for key in WATCHED_SYSCTLS:
        with contextlib.suppress(OSError):
            out[key] = sysctl.read(key)
    return out


def _docker_cli(paths: DockerdPaths, *args: str, timeout_s: float = 120) -> str:
    env = {**os.environ, "DOCKER_HOST": paths.host}
    p = subprocess.run(
        [DOCKER, *args], capture_output=True, text=True, env=env, timeout=timeout_s, check=False
    )
    if p.returncode != 0:
        raise BackendError(f"docker {' '.join(args)} failed: {p.stderr.strip()[-500:]}")
    return p.stdout


def _daemon_pids(paths: DockerdPaths) -> list[int]:
    """Processes whose command line names this daemon's run directory (its containerd, the
    containers' shims): all started by our dockerd, none by anyone else."""
    needle = str(paths.exec_root).encode()
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit() or int(p.name) == os.getpid():
            continue
        try:
            cmd = (p / "cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmd:
            out.append(int(p.name))
    return out


def is_running(paths: DockerdPaths) -> bool:
    """Whether a dockerd (or what it started) still serves ``paths``."""
    return bool(_daemon_pids(paths))


def _wait_ready(paths: DockerdPaths, proc: Proc, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        if not proc.alive():
            raise BackendError(f"dockerd exited while starting: {proc.tail()}")
        if paths.socket.exists():
            try:
                _docker_cli(paths, "version", "--format", "{{.Server.Version}}", timeout_s=10)
                return
            except (BackendError, subprocess.TimeoutExpired) as e:
                last = str(e)
        time.sleep(0.2)
    raise BackendError(f"dockerd not ready after {timeout_s}s: {last}; log: {proc.tail()}")


def _remove_containers(paths: DockerdPaths) -> None:
    """Every container, then every user network (kind's ``kind`` bridge): a network left
    defined would leave its bridge on the host after dockerd stops."""
    ids = _docker_cli(paths, "ps", "-aq").split()
    if ids:
        _docker_cli(paths, "rm", "-f", "-v", *ids, timeout_s=300)
    _docker_cli(paths, "network", "prune", "-f", timeout_s=120)


def host_links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def _remove_new_links(before: set[str]) -> list[str]:
    """Docker's bridges and veths that appeared on the host while it ran and are still there."""
    gone = []
    for name in sorted(host_links() - before):
        if DOCKER_LINK.match(name):
            p = subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
            if p.returncode == 0:
                gone.append(name)
    return gone


def restore_firewall(before: str) -> list[str]:
    """Undo docker's changes since ``before``; the list names foreign ones (left alone)."""
    after = _iptables_save()
    errors = []
    for cmd in hostfirewall.undo_commands(before, after):
        p = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=30)
        if p.returncode != 0:
            errors.append(f"{' '.join(cmd)}: {p.stderr.strip()}")
    if _nf_tables():
        for table in hostfirewall.new_empty_tables(before, _iptables_save()):
            p = subprocess.run(
                ["nft", "delete", "table", "ip", table],
                capture_output=True,
                text=True,
                check=False,
                timeout=30,
            )
            if p.returncode != 0:
                errors.append(f"nft delete table ip {table}: {p.stderr.strip()}")
    if errors:
        raise RestoreFailed("could not undo dockerd's iptables changes: " + "; ".join(errors))
    return hostfirewall.foreign_changes(before, _iptables_save())


def _nf_tables() -> bool:
    """Whether ``iptables`` is the nf_tables variant (whose tables ``nft`` can drop)."""
    p = subprocess.run(["iptables", "--version"], capture_output=True, text=True, check=False)
    return "nf_tables" in p.stdout and shutil.which("nft") is not None


def _restore_sysctls(originals: dict[str, str]) -> list[str]:
    changed = []
    for key, old in originals.items():
        try:
            if sysctl.read(key) != old:
                sysctl.write(key, old)
                changed.append(f"{key} = {old}")
        except OSError as e:
            raise RestoreFailed(f"could not restore {key}={old}: {e}") from e
    return changed


def _container_cgroups() -> list[Path]:
    """Every cgroup directory under our containers' parent, deepest first."""
    out: list[Path] = []
    for ctrl in CGROUP_ROOT.iterdir() if CGROUP_ROOT.is_dir() else ():
        top = ctrl / CGROUP_PARENT
        if top.is_dir():
            out += [p for p in top.rglob("*") if p.is_dir()] + [top]
    return sorted(out, key=lambda p: len(p.parts), reverse=True)


def _kill_container_processes() -> int:
    """SIGKILL what is left in our containers' cgroups (a dockerd that died left them)."""
    pids: set[int] = set()
    for cg in _container_cgroups():
        with contextlib.suppress(OSError):
            pids.update(int(t) for t in (cg / "cgroup.procs").read_text().split())
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    for cg in _container_cgroups():
        while True:
            try:
                cg.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.1)
    return len(pids)


def _unmount_under(root: Path) -> list[str]:
    """Unmount what dockerd left mounted under its root (data-root bind, overlays, netns)."""
    prefix = str(root).rstrip("/") + "/"
    points = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].replace("\\040", " ")
            if point.startswith(prefix):
                points.append(point)
    done = []
    for point in sorted(points, key=len, reverse=True):
        p = subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        if p.returncode == 0:
            done.append(point)
    return done


def _sweep(paths: DockerdPaths, dockerd_pid: int | None, dockerd_start: int | None) -> list[str]:
    """Stop dockerd by PID, then everything it left: containerd and shims (their command line
    names our run directory), the containers' processes (our cgroup parent), mounts under
    our root. Returns what it had to do beyond stopping dockerd."""
    actions = []
    if dockerd_pid is not None:
        stop_pid(dockerd_pid, dockerd_start, grace_s=20)
    left = _daemon_pids(paths)
    for pid in left:
        stop_pid(pid, None, grace_s=5)
    if left:
        actions.append(f"stopped {len(left)} process(es) dockerd left (containerd, shims)")
    killed = _kill_container_processes()
    if killed:
        actions.append(f"killed {killed} container process(es) left in /{CGROUP_PARENT}")
    unmounted = _unmount_under(paths.root)
    if unmounted:
        actions.append(f"unmounted {len(unmounted)} mount(s) under {paths.root}")
    return actions


class DockerCli(Protocol):
    """A Docker daemon driven through its CLI: the private one (:class:`Dockerd`) or the
    system's (``kind.SystemDocker``). What the image builders need."""

    def cli(self, *args: str, timeout_s: float = 120) -> str: ...


@dataclass
class Dockerd:
    """A running private dockerd (see the module doc)."""

    paths: DockerdPaths
    proc: Proc

    @property
    def host(self) -> str:
        return self.paths.host

    def cli(self, *args: str, timeout_s: float = 120) -> str:
        return _docker_cli(self.paths, *args, timeout_s=timeout_s)


def _write_runc_wrapper(paths: DockerdPaths) -> None:
    paths.bin_dir.mkdir(parents=True, exist_ok=True)
    python = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
    text = runcwrap.script(RUNC, python)
    w = paths.runc_wrapper
    if not w.is_file() or w.read_text() != text:
        tmp = w.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.chmod(0o755)
        tmp.replace(w)


def _cli_dir(paths: DockerdPaths) -> Path:
    paths.bin_dir.mkdir(parents=True, exist_ok=True)
    link = paths.bin_dir / "docker"
    if not link.is_symlink() or os.readlink(link) != DOCKER:
        link.unlink(missing_ok=True)
        link.symlink_to(DOCKER)
    return paths.bin_dir


@contextlib.contextmanager
def _docker_env(paths: DockerdPaths) -> Iterator[None]:
    path = f"{_cli_dir(paths)}:{os.environ.get('PATH') or '/usr/bin:/bin'}"
    with environ_set({"DOCKER_HOST": paths.host, "PATH": path}):
        yield


@contextlib.contextmanager
def sysctls_kept(journal: Journal) -> Iterator[dict[str, str]]:
    """Journal the host-global knobs a kind node may write (:data:`WATCHED_SYSCTLS`) and put
    back any that changed when the scope ends (``restore`` does it for a killed run). For a
    kind run on a Docker daemon this project did not start; :func:`running` does the same."""
    originals = watched_sysctls()
    for key, old in originals.items():
        journal.record("sysctl", key=key, netns=None, original=old)
    try:
        yield originals
    finally:
        _restore_sysctls(originals)


@contextlib.contextmanager
def running(
    journal: Journal, paths: DockerdPaths | None = None, *, timeout_s: float = 60
) -> Iterator[Dockerd]:
    """Start dockerd, yield it, then remove its containers, stop it and put the host back."""
    paths = paths or DockerdPaths.default()
    for tool in (DOCKERD, DOCKER, RUNC, "iptables-save"):
        if shutil.which(tool) is None:
            raise MissingTool(f"{tool} is missing: apt-get install docker.io iptables", tool=tool)
    if is_running(paths):
        raise BackendError(f"a dockerd already serves {paths.socket}: another run is using it")
    before = _iptables_save()
    originals = watched_sysctls()
    links = host_links()
    paths.data_root.mkdir(parents=True, exist_ok=True)
    paths.exec_root.mkdir(parents=True, exist_ok=True)
    _write_runc_wrapper(paths)
    # journal first: a kill between here and the end still lets `restore` put the host back
    journal.record(
        "dockerd",
        root=str(paths.root),
        exec_root=str(paths.exec_root),
        iptables_before=before,
    )
    for key, old in originals.items():
        journal.record("sysctl", key=key, netns=None, original=old)
    proc: Proc | None = None
    try:
        proc = spawn(journal, "dockerd", paths.argv(), log=paths.log)
        _wait_ready(paths, proc, timeout_s)
        with _docker_env(paths):
            yield Dockerd(paths, proc)
    finally:
        errors: list[str] = []
        if proc is not None and proc.alive():
            try:
                _remove_containers(paths)
            except (BackendError, subprocess.TimeoutExpired) as e:
                errors.append(str(e))
        _sweep(paths, proc.pid if proc else None, proc.start if proc else None)
        if proc is not None:
            with contextlib.suppress(ChildProcessError, subprocess.TimeoutExpired):
                proc.popen.wait(5)
        _remove_new_links(links)
        try:
            restore_firewall(before)
            _restore_sysctls(originals)
        except RestoreFailed as e:
            errors.append(str(e))
        if errors:
            raise RestoreFailed("; ".join(errors))


def undo_entry(entry: dict[str, Any]) -> list[str]:
    """``restore``'s undo for a journaled ``dockerd`` entry of a killed run (idempotent).

    The ``process`` entry stops dockerd itself; this stops what it left (containerd, shims),
    and takes docker's iptables changes back out. The ``sysctl`` entries restore the knobs.
    """
    paths = DockerdPaths(Path(entry["root"]))
    actions = _sweep(paths, None, None)
    before = str(entry.get("iptables_before", ""))
    now = _iptables_save()
    cmds = hostfirewall.undo_commands(before, now) + [
        ["nft", "delete", "table", "ip", t] for t in hostfirewall.new_empty_tables(before, now)
    ]
    if cmds:
        restore_firewall(before)
        actions.append(f"undid {len(cmds)} iptables change(s) dockerd left")
    return actions
