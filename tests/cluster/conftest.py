"""Cluster tests (kind, the private dockerd, a real cluster): root, docker, the host lock.

They check the host the same way the kernel tests do, with the same fixtures. The marks every
module here starts from: ``NEEDS_DOCKER`` (root and docker.io) and ``KIND`` (those, unless
``CTH_KIND_TESTS=0`` skips the kind tests; they are part of `make test`).

The kind tests share one kind cluster (``kept_kind``), made once for the package by
``conntrack-harness up`` on "the user's" Docker and deleted by ``down`` after its last test, as
a user iterating on a scenario keeps one: no test builds what the session already has
(issue 19 item 1). Its teardown checks that the host is as found."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bench.kindkept import kept_kind_env
from harness.kernel.journal import HostLock, Journal
from harness.kindbuild import dockerd
from harness.upstream import kindparts
from tests.kernel.conftest import HostSnapshot, host_unchanged, journal

__all__ = [
    "EXIT",
    "KIND",
    "NEEDS_DOCKER",
    "HostSnapshot",
    "KeptKind",
    "host_unchanged",
    "journal",
    "kind_runs",
    "kind_shipped",
    "outcomes",
    "run_on",
]

NEEDS_DOCKER = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(shutil.which(dockerd.DOCKERD) is None, reason="docker.io not installed"),
]
KIND = [
    *NEEDS_DOCKER,
    pytest.mark.skipif(os.environ.get("CTH_KIND_TESTS") == "0", reason="CTH_KIND_TESTS=0"),
]

ROOT = Path(__file__).resolve().parents[2]
CT_MAX = Path("/proc/sys/net/netfilter/nf_conntrack_max")
KEPT = "cth-equivalence"  # the kind cluster the package's tests share
# the files whose netns runs come first (an idle kind cluster's own flows would count against
# the host's nf_conntrack_max, which the netns runs shrink)
NETNS_FIRST = ("scenarios/exhaustion.yaml", "scenarios/race.yaml")
# counters the kernel moves by itself (fs.quota.syncs counts every sync, e.g. a container's)
VOLATILE = ("random", "ns_last_pid", "inode", "dentry", "file-nr", "entropy", "_state", "stat",
            "quota.syncs")  # fmt: skip


@dataclass(frozen=True)
class KeptKind:
    """The shared cluster: the runs' environment, "the user's" Docker it lives on, its name
    and kubeconfig, and what ``up`` printed while it made it."""

    env: dict[str, str]
    docker: dockerd.Dockerd
    name: str
    kubeconfig: Path
    up_stderr: str


EXIT = {"pass": 0, "fail": 1, "inconclusive": 6}  # `run`'s exit per run verdict


def run_on(
    backend: str, scenario: Path, report: Path, env: dict[str, str], *flags: str
) -> tuple[dict[str, Any], str]:
    """``conntrack-harness run --backend BACKEND``, as a user runs it: its result.json and
    stderr. The exit is the run's verdict (a crash fails here)."""
    argv = [sys.executable, "-m", "harness.cli", "run", str(scenario), "--backend", backend]
    argv += ["--report-dir", str(report), "--wait", "60", *flags]
    p = subprocess.run(
        argv, capture_output=True, text=True, timeout=2400, check=False, cwd=report.parent, env=env
    )
    assert p.returncode in (0, 1, 6), f"{backend}: exit {p.returncode}\n{p.stderr[-3000:]}"
    print(p.stderr[-2500:])
    result: dict[str, Any] = json.loads((report / "result.json").read_text())
    assert result["environment"]["backend"] == backend
    # the exit is the run's verdict: a phase with expectations not measured in steady state
    # is "inconclusive", exit 6, never 0 (issue 18 item 5)
    assert p.returncode == EXIT[result["verdict"]], (result["verdict"], p.returncode)
    return result, p.stderr


def outcomes(result: dict[str, Any]) -> dict[str, str]:
    """Each timeout-rate comparison's outcome: the first word of its sentence (fixed, worse,
    inconclusive, ...). The queries-per-lookup lines are left out: a timed-out lookup's retries
    are counted differently by the backends' drains (3.6 vs 5.6 queries per lookup in the
    exhaustion baseline, same timeouts), and the timeouts are what the verdicts rest on."""
    return {
        c["phase"]: c["sentence"].split(":")[0]
        for c in result.get("comparisons", [])
        if c.get("metric") == "dns.timeout_rate"
    }


def cli(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "harness.cli", *args]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=1800, check=False, cwd=cwd, env=env
    )


def _kernel_sysctls() -> dict[str, str]:
    out = subprocess.run(["sysctl", "-a"], capture_output=True, text=True, check=False).stdout
    pairs = (ln.split(" = ", 1) for ln in out.splitlines() if " = " in ln)
    return {
        k: v
        for k, v in pairs
        if k.split(".")[0] in ("kernel", "fs", "vm") and not any(x in k for x in VOLATILE)
    }


def _host() -> dict[str, object]:
    """What a kind cluster and its dockerd could leave behind on the host."""
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    forward = subprocess.run(
        ["iptables", "-S", "FORWARD"], capture_output=True, text=True, check=True
    ).stdout
    return {
        "iptables": "\n".join(ln for ln in rules.splitlines() if not ln.startswith("#")),
        "FORWARD policy": forward.splitlines()[0] if forward else "",
        "links": dockerd.host_links(),
        "docker sysctls": dockerd.watched_sysctls(),
        "kernel sysctls": _kernel_sysctls(),
        "mounts": Path("/proc/self/mountinfo").read_text().count("conntrack-harness/docker"),
        "nf_conntrack_max": CT_MAX.read_text(),
    }


@pytest.fixture(scope="package")
def kept_kind(
    shipped_result: Callable[[str], dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KeptKind]:
    """One kind cluster for the package's kind tests, made by ``up`` (exhaustion.yaml's
    cluster config, which race.yaml shares) and kept between their runs, on this project's
    dockerd started as "the user's" Docker with the node image built here from the pinned
    parts under kind's own name. The netns sides of NETNS_FIRST run before it exists. The
    fixture holds the host lock throughout; the runs take a lock file of their own. At the
    end ``down`` deletes the cluster, the dockerd is stopped by PID with the project's code,
    and the host is as found: rules, FORWARD policy, links, sysctls, mounts, the table size."""
    for path in NETNS_FIRST:
        shipped_result(path)
    tmp = tmp_path_factory.mktemp("kept-kind")
    with pytest.MonkeyPatch.context() as mp, HostLock(wait_s=3600):
        mp.setenv("CONNTRACK_HARNESS_STATE_DIR", str(tmp / "test-state"))
        before = _host()
        assert not dockerd.is_running(dockerd.DockerdPaths.default())
        journal = Journal.create(os.urandom(3).hex())
        try:
            with kept_kind_env(journal, KEPT, tmp, named=False) as kept:
                env = kept.env
                up = cli(["up", NETNS_FIRST[0], "--backend", "kind", "--name", KEPT,
                          "--wait", "60"], env, ROOT)  # fmt: skip
                assert up.returncode == 0, up.stderr[-3000:]
                assert f"up: kind cluster {KEPT}" in up.stdout
                assert "kind create cluster" in up.stderr
                again = cli(["up", NETNS_FIRST[1], "--backend", "kind", "--wait", "60"], env, ROOT)
                assert again.returncode == 2, again.stderr[-2000:]
                assert f"a cluster is up already: kind cluster {KEPT}" in again.stderr
                kubeconfig = tmp / "kubeconfig"
                kubeconfig.write_text(_kind(["get", "kubeconfig", "--name", KEPT], env))
                try:
                    yield KeptKind(env, kept.docker, KEPT, kubeconfig, up.stderr)
                finally:
                    _down(env, tmp)
        finally:
            journal.close()
        assert not dockerd.is_running(dockerd.DockerdPaths.default())
        after = _host()
        changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        assert not changed, changed


@pytest.fixture(scope="package")
def kind_runs(
    kept_kind: KeptKind, tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], tuple[dict[str, Any], Path]]:
    """A shipped scenario run with ``--backend kind`` on the kept cluster, once for the
    package: its result.json and its report directory (the equivalence test, the kubeconfig
    test and the resolv.conf test read the same run)."""
    done: dict[str, tuple[dict[str, Any], Path]] = {}

    def get(path: str) -> tuple[dict[str, Any], Path]:
        if path not in done:
            report = tmp_path_factory.mktemp("kind-" + Path(path).stem) / "kind"
            result, stderr = run_on("kind", ROOT / path, report, kept_kind.env)
            # the cluster `up` keeps, reused: nothing created, nothing deleted
            assert f"reusing the kind cluster {KEPT}: kept by `conntrack-harness up`" in stderr
            assert "kind create cluster" not in stderr
            done[path] = (result, report)
        return done[path]

    return get


@pytest.fixture(scope="package")
def kind_shipped(
    kind_runs: Callable[[str], tuple[dict[str, Any], Path]],
) -> Callable[[str], dict[str, Any]]:
    """The result.json of :func:`kind_runs`' run of a shipped scenario."""
    return lambda path: kind_runs(path)[0]


def _kind(args: list[str], env: dict[str, str]) -> str:
    kind = shutil.which("kind") or str(kindparts.locate("kind") / "kind")
    return subprocess.run([kind, *args], capture_output=True, text=True, check=True, env=env).stdout


def _down(env: dict[str, str], cwd: Path) -> None:
    """``down`` deletes the cluster (exit 0), and a second ``down`` finds nothing up (exit 0)."""
    down = cli(["down", "--wait", "60"], env, cwd)
    assert down.returncode == 0, down.stderr[-2000:]
    assert down.stdout.startswith(f"down: deleted: kind cluster {KEPT}")
    assert KEPT not in _kind(["get", "clusters"], env).split()
    none = cli(["down"], env, cwd)
    assert (none.returncode, none.stdout.strip()) == (0, "down: nothing was up")
