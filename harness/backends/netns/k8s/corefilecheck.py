"""The user's Corefile, parsed by the pinned CoreDNS before the run takes the host lock.

CoreDNS has no flag that only parses. So it is started on each Corefile the run will use (the
file as written, and as the scenario's cache/max_concurrent settings and the coredns
remediation edit it) in a throwaway network namespace and mount namespace of its own
(``unshare``: no link but ``lo``, no route, nothing named in /run/netns), with the kubeconfig
line the run adds pointing at a closed loopback port and the upstream the pods get in a
private /etc/resolv.conf. Once CoreDNS has set every plugin up (it says it is starting its
servers, or that it waits for the Kubernetes API, which it only does after every plugin's
setup), the file parsed; if it exits first, its error is the user's (exit 2), quoted at the
line of the user's file. Both namespaces go when the process does: it is killed on every path
(and with the harness, by the parent-death signal), and its temporary files removed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cthcommon.errors import BackendError, BadInput, MissingTool
from harness.backends.netns.k8s import coredns
from harness.backends.netns.k8s.cluster import UPSTREAM_DNS
from harness.backends.netns.k8s.controlplane import component_info
from harness.plan.types import CorefilePlan, RunPlan
from harness.upstream import ComponentMissing, locate

FIELD = "cluster.coredns.corefile"
TIMEOUT_S = 30.0
# nothing listens there in the throwaway namespace: the kubernetes plugin never syncs
KUBECONFIG = """apiVersion: v1
kind: Config
clusters:
- name: parse-only
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
users:
- name: parse-only
  user: {token: parse-only}
contexts:
- name: parse-only
  context: {cluster: parse-only, user: parse-only}
current-context: parse-only
"""
# what CoreDNS prints once it is set up: its version banner after the servers started, or
# the kubernetes plugin waiting for its API (an OnStartup step, after every setup)
# (whole lines: an error quoting the user's text cannot pass for them)
_PARSED = re.compile(
    r"^(CoreDNS-\S+|\[INFO\] plugin/kubernetes: waiting for Kubernetes API before starting "
    r"server)$",
    re.MULTILINE,
)
# the file parsed, but here CoreDNS cannot listen where it says (a ``bind`` address the pod
# has and the throwaway namespace has not): not a parse error
_LISTEN = ("bind: cannot assign requested address",)
_SCRIPT = 'mount --bind "$1" /etc/resolv.conf && ip link set lo up && exec "$2" -conf "$3"'


@dataclass(frozen=True)
class Verdict:
    ok: bool
    error: str  # CoreDNS's own complaint (one line), when not ok


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def argv(binary: Path, corefile: Path, resolv: Path) -> list[str]:
    """CoreDNS in a new network and mount namespace, killed when ``unshare`` goes."""
    return [
        *("unshare", "--net", "--mount", "--propagation", "private", "--fork", "--kill-child"),
        *("--", "sh", "-c", _SCRIPT, "sh", str(resolv), str(binary), str(corefile)),
    ]


def judge(log: str, exited: bool) -> Verdict | None:
    """What CoreDNS's output so far says (pure): parsed, rejected, or None (not yet)."""
    if _PARSED.search(log):
        return Verdict(True, "")
    if not exited:
        return None
    error = coredns.error_line(log)
    if any(p in error for p in _LISTEN):
        return Verdict(True, "")
    return Verdict(False, error)


TMP_PREFIX = "conntrack-harness-corefile-"  # then the checking process's PID and a dash


def sweep_stale(tmpdir: Path | None = None) -> list[Path]:
    """Remove the temporary directories of pre-checks whose process is gone (a SIGKILL
    between its start and its cleanup; the check runs before the lock, so nothing journals
    it): each is named with its process's PID. Returns what it removed."""
    removed = []
    for d in Path(tmpdir or tempfile.gettempdir()).glob(f"{TMP_PREFIX}*-*"):
        pid = d.name[len(TMP_PREFIX) :].split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _parse(binary: Path, text: str, upstream: str, timeout_s: float) -> tuple[Verdict, str]:
    """(CoreDNS's verdict on ``text``, the Corefile text it was given)."""
    sweep_stale()
    with tempfile.TemporaryDirectory(prefix=f"{TMP_PREFIX}{os.getpid()}-") as tmp:
        d = Path(tmp)
        kubeconfig = d / "kubeconfig"
        kubeconfig.write_text(KUBECONFIG)
        resolv = d / "resolv.conf"
        resolv.write_text(f"nameserver {upstream}\n")
        written = coredns.with_kubeconfig(text, kubeconfig)
        corefile = d / "Corefile"
        corefile.write_text(written)
        log = d / "log"
        with open(log, "wb") as out:
            try:
                proc = subprocess.Popen(
                    argv(binary, corefile, resolv),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,  # noqa: PLW1509
                )
            except FileNotFoundError as e:
                raise MissingTool(f"cannot check the Corefile: {e}", tool="unshare") from e
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                exited = proc.poll() is not None
                verdict = judge(log.read_bytes().decode(errors="replace"), exited)
                if verdict is not None:
                    return verdict, written
                if time.monotonic() > deadline:
                    tail = coredns.error_line(log.read_bytes().decode(errors="replace"))
                    raise BackendError(
                        f"CoreDNS neither started nor failed on the Corefile in {timeout_s:.0f} "
                        f"s (checking it before the run): {tail}"
                    )
                time.sleep(0.05)
        finally:
            _kill_group(proc)


def _kill_group(proc: subprocess.Popen[bytes], wait_s: float = 5.0) -> None:
    """Kill ``unshare`` and everything it started (their own process group), and return once
    none of them is left: ``--kill-child`` alone kills CoreDNS asynchronously, after ``unshare``
    has been reaped."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)


def check(
    texts: Iterable[str],
    *,
    user: CorefilePlan,
    kubernetes: str | None,
    upstream: str,
    timeout_s: float = TIMEOUT_S,
) -> None:
    """Each Corefile text the run will use, parsed by the release's CoreDNS; the first one
    it rejects is BadInput naming ``user.source`` (the user's file) and quoting CoreDNS's error
    at that file's line. A CoreDNS not built yet is the prerequisite doctor names (exit 2)."""
    try:
        binary = locate("coredns", kubernetes)
    except ComponentMissing as e:
        raise ComponentMissing(f"CoreDNS checks the Corefile before the run, and {e}") from None
    source, user_text = user.source, user.text
    for text in dict.fromkeys(texts):  # each distinct text once, in the run's order
        verdict, written = _parse(binary, text, upstream, timeout_s)
        if not verdict.ok:
            version = component_info("coredns", kubernetes)["version"]
            error = coredns.in_user_file(verdict.error, written, source, user_text)
            raise BadInput(
                f"CoreDNS {version} rejected the Corefile: {error}", field=FIELD, source=source
            )


def check_plan(run: RunPlan, kubernetes: str | None = None) -> None:
    """The scenario's own Corefile (if it names one, read when the run was planned), as each
    phase of the run will have it, parsed by the CoreDNS of ``kubernetes`` (default: the
    scenario's pinned release)."""
    user = run.cluster.corefile
    if user is None:
        return
    plans = [run.coredns, *(p.coredns for p in run.phases)]
    texts = [
        coredns.configured(user.text, cache=c.cache, max_concurrent=c.max_concurrent) for c in plans
    ]
    check(texts, user=user, kubernetes=kubernetes or run.kube_proxy.version, upstream=UPSTREAM_DNS)
