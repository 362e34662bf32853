"""``conntrack-harness upstream build``: put whatever is missing into the cache.

:func:`plan` (pure) lists what to build, in the order other work needs it: etcd and CoreDNS,
then kube-apiserver, kube-controller-manager and kube-proxy, then node-cache, then kubelet,
kubeadm, kube-scheduler and kubectl (the kind node image and the kind backend). :func:`run`
builds each task under the cache lock, printing what it does and how long it took. A
component the proxy refuses is named exactly; it fails the build unless the versions file
already marks it ``blocked``, and either way the other components are still built.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from cthcommon.errors import BadInput, HarnessError
from harness.upstream import (
    BINARY_COMPONENT,
    COMPONENT_BINARIES,
    Release,
    cache,
    component_dir,
    download,
    gobuild,
    installed,
    recipes,
)
from harness.upstream.errors import (
    BuildFailed,
    DownloadUnavailable,
    DownloadUnreachable,
    ModuleRefused,
)

Source = Literal["go", "download", "auto"]
SOURCES: tuple[Source, ...] = ("go", "download", "auto")

# (component, binaries) in the order the rest of the harness needs them
PRIORITY: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("etcd", ("etcd",)),
    ("coredns", ("coredns",)),
    ("kubernetes", ("kube-apiserver", "kube-controller-manager", "kube-proxy")),
    ("node-cache", ("node-cache",)),
    ("kubernetes", ("kubelet", "kubeadm", "kube-scheduler", "kubectl")),
)


@dataclass(frozen=True)
class Task:
    """Build ``binaries`` of ``component@version`` (pinned by release ``release``)."""

    component: str
    version: str
    binaries: tuple[str, ...]
    release: Release


@dataclass(frozen=True)
class Outcome:
    task: Task
    status: Literal["installed", "blocked", "failed"]
    seconds: float
    detail: str


def selection(names: Iterable[str] | None) -> set[str]:
    """The binaries named by components (``kubernetes``) or binaries (``kube-proxy``)."""
    if not names:
        return set(BINARY_COMPONENT)
    out: set[str] = set()
    for n in names:
        if n in COMPONENT_BINARIES:
            out.update(COMPONENT_BINARIES[n])
        elif n in BINARY_COMPONENT:
            out.add(n)
        else:
            raise BadInput(
                "unknown component",
                field="--component",
                value=n,
                allowed=sorted({*COMPONENT_BINARIES, *BINARY_COMPONENT}),
            )
    return out


def without_blocked(
    rels: list[Release], wanted: set[str], named: Iterable[str] | None
) -> tuple[set[str], list[str]]:
    """Leave out a part the versions file marks ``blocked`` unless it is named on the command
    line (so a default build neither waits for the network nor for the cache lock on its
    account): (what to build, a note for each part left out)."""
    why = next((r.node_cache_blocked for r in rels if r.node_cache_blocked), "")
    if not why or "node-cache" not in wanted or "node-cache" in set(named or ()):
        return wanted, []
    note = (
        f"node-cache {rels[0].node_cache}: BLOCKED, not tried (`--component node-cache` "
        f"tries it): {why}"
    )
    return wanted - {"node-cache"}, [note]


def plan(
    releases: Iterable[Release],
    wanted: set[str],
    is_installed: Callable[[str, str, str], bool],
) -> list[Task]:
    """What to build, in :data:`PRIORITY` order; a component several releases pin (the same
    node-cache, say) is built once."""
    rels = list(releases)
    seen: set[tuple[str, str, str]] = set()
    tasks: list[Task] = []
    for component, step in PRIORITY:
        for rel in rels:
            version = rel.version_of(component)
            todo = tuple(
                b
                for b in step
                if b in wanted
                and (component, version, b) not in seen
                and not is_installed(component, version, b)
            )
            seen.update((component, version, b) for b in todo)
            if todo:
                tasks.append(Task(component, version, todo, rel))
    return tasks


def missing(component: str, version: str, binary: str) -> bool:
    return installed(component, version, binary) is None


def _go(
    task: Task, out: Path, gocache: Path | None, say: Callable[[str], None]
) -> dict[str, cache.Installed]:
    env = gobuild.go_env(gocache)
    module = recipes.MODULES[task.component]
    query = task.version
    if task.component == "node-cache":  # tags are not semver: the tag's pseudo-version
        query = task.release.node_cache_module_version or task.version
    with tempfile.TemporaryDirectory(prefix="cth-gomod-") as cwd:
        resolved, go_mod = gobuild.fetch_module(
            module, query, cwd=Path(cwd), env=env, component=task.component
        )
    recipe = recipes.for_component(task.component, task.version, resolved, go_mod, task.binaries)
    built = gobuild.build(recipe, task.binaries, out, env=env, progress=say)
    cold = gocache is not None
    return {b: cache.Installed(x.path, "go", x.origin, x.seconds, cold) for b, x in built.items()}


def _download(
    task: Task, out: Path, mirror: str | None, say: Callable[[str], None]
) -> dict[str, cache.Installed]:
    got = download.download(
        task.component, task.version, task.binaries, out, mirror=mirror, progress=say
    )
    return {b: cache.Installed(x.path, "download", x.origin, x.seconds) for b, x in got.items()}


@dataclass
class Downloads:
    """What one build run learnt of the download host: once it did not answer at all, the
    ``auto`` source builds the rest from source without asking it again (a host that drops
    packets would cost a timeout per component otherwise)."""

    unreachable: str | None = None


def make(
    task: Task,
    out: Path,
    source: Source,
    *,
    mirror: str | None = None,
    gocache: Path | None = None,
    say: Callable[[str], None] = print,
    downloads: Downloads | None = None,
) -> dict[str, cache.Installed]:
    """Build or download ``task``'s binaries into ``out`` (``gocache``: a Go build cache of
    its own, for a cold build; ``downloads``: the run's, shared by its tasks)."""
    if source == "go":
        return _go(task, out, gocache, say)
    if source == "download":
        return _download(task, out, mirror, say)
    if downloads is not None and downloads.unreachable is not None:
        return _go(task, out, gocache, say)
    try:
        return _download(task, out, mirror, say)
    except DownloadUnavailable as e:
        if isinstance(e, DownloadUnreachable) and downloads is not None:
            downloads.unreachable = str(e)
            say(f"  no official download ({e}); building this and the rest from source")
        else:
            say(f"  no official download ({e}); building from source")
        for leftover in out.iterdir():
            leftover.unlink()
        return _go(task, out, gocache, say)


def run(
    tasks: list[Task],
    source: Source,
    *,
    mirror: str | None = None,
    cold: bool = False,
    rebuild: bool = False,
    say: Callable[[str], None] = print,
) -> list[Outcome]:
    """Run ``tasks`` one after the other under the cache lock; every task is tried.

    ``cold``: the whole run shares one empty Go build cache, as on a fresh machine (the Go
    module cache is kept: downloads are not timed); each task's time is recorded in its stamp
    under the run's ``cold_run`` id, for the bench's ``upstream_cold_build_s``."""
    outcomes: list[Outcome] = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(cache.build_lock(say))
        gocache = None
        cold_run = ""
        if cold:
            gocache = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cth-gocache-")))
            cold_run = datetime.now(UTC).isoformat(timespec="seconds")
        n = len(tasks)
        downloads = Downloads()
        for i, task in enumerate(tasks, 1):
            todo = tuple(
                b
                for b in task.binaries
                if rebuild or missing(task.component, task.version, b)  # another builder's?
            )
            head = f"[{i}/{n}] {task.component} {task.version}"
            if not todo:
                say(f"{head}: already in the cache")
                continue
            t = Task(task.component, task.version, todo, task.release)
            say(f"{head}: {', '.join(todo)} ({source}{', cold Go cache' if cold else ''})")
            t0 = time.monotonic()
            try:
                _build_one(t, source, mirror=mirror, gocache=gocache, cold_run=cold_run,
                           say=say, downloads=downloads)  # fmt: skip
            except ModuleRefused as e:
                took = time.monotonic() - t0
                note = t.release.node_cache_blocked if t.component == "node-cache" else ""
                status: Literal["blocked", "failed"] = "blocked" if note else "failed"
                say(f"{head}: {status.upper()} after {took:.1f} s: {e}")
                outcomes.append(Outcome(t, status, took, str(e)))
                continue
            except (HarnessError, OSError) as e:
                took = time.monotonic() - t0
                say(f"{head}: FAILED after {took:.1f} s: {e}")
                outcomes.append(Outcome(t, "failed", took, str(e)))
                continue
            took = time.monotonic() - t0
            say(f"{head}: installed in {took:.1f} s -> {component_dir(t.component, t.version)}")
            outcomes.append(Outcome(t, "installed", took, ""))
    return outcomes


def _build_one(
    t: Task,
    source: Source,
    *,
    mirror: str | None,
    gocache: Path | None,
    cold_run: str,
    say: Callable[[str], None],
    downloads: Downloads | None = None,
) -> None:
    """Make ``t``'s binaries in a staging directory and install them with a record of how."""
    t0 = time.monotonic()
    load0 = os.getloadavg()[0]
    with cache.staging(t.component, t.version) as st:
        made = make(t, st, source, mirror=mirror, gocache=gocache, say=say, downloads=downloads)
        record = {
            "binaries": list(t.binaries),
            "source": "+".join(sorted({m.source for m in made.values()})),
            "seconds": round(time.monotonic() - t0, 1),
            "cold": gocache is not None,
            **({"cold_run": cold_run} if cold_run else {}),
            "load_avg_1m": [round(load0, 2), round(os.getloadavg()[0], 2)],
            "cpus": os.cpu_count(),
        }
        cache.install(t.component, t.version, made, run=record)


def check(outcomes: list[Outcome]) -> None:
    """Raise when a component failed (a known-blocked one does not count)."""
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        names = ", ".join(f"{o.task.component} {o.task.version}" for o in failed)
        raise BuildFailed(f"upstream build failed for {names}: {failed[0].detail}")
