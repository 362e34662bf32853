"""``conntrack-harness up SCENARIO --backend kind`` and ``conntrack-harness down``: keep a kind
cluster between runs, so iterating on a scenario does not pay for a cluster each time.

``up`` makes the cluster for the scenario's cluster config (nodes, kube-proxy mode, domain) as
a run would, loads the images and proves the run's workload comes up on it, then keeps it
(:mod:`harness.backends.kube.up` holds the record). ``run --backend kind`` reuses it; a run
whose cluster config or project version differs rebuilds it, and keeps it. ``down`` deletes
it. Exit codes as ``run``'s: 0 done; 2 bad input or a refusal (``up`` when a cluster is up
already, another backend, the private dockerd asked for); 3 the backend failed (no Docker
daemon answers). ``down`` with nothing up says so and exits 0.

The netns backend needs no ``up``: its cluster starts in about 4 s from the kept control
plane in the cache, which its first run makes.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
import time
from typing import TYPE_CHECKING

from cthcommon.errors import BackendError, BadInput, CommandFailed, HarnessError
from harness import __version__
from harness.backends.kube import commands, up
from harness.backends.kube.up import UpRecord
from harness.cliargs import add_wait
from harness.kernel.journal import is_same_process, process_start_time

if TYPE_CHECKING:
    from harness.scenario.model import Scenario


def _say(line: str) -> None:
    print(f"conntrack-harness: {line}", file=sys.stderr, flush=True)


def _kind_run(argv: list[str], docker_host: str, timeout_s: float = 300) -> str:
    """A kind command (``argv`` from :mod:`.commands`) on the daemon at ``docker_host``, with
    the kind CLI on PATH, else the pinned one built here; CommandFailed with its stderr."""
    from harness.backends.kube.proc import environ_set, subprocess_runner
    from harness.upstream import kindparts

    kind = shutil.which(commands.KIND) or str(kindparts.kind_binary())
    with environ_set({"DOCKER_HOST": docker_host}):
        return subprocess_runner([kind, *argv[1:]], timeout_s=timeout_s).stdout


def cluster_exists(rec: UpRecord) -> bool:
    out = _kind_run(commands.kind_get_clusters(), rec.docker_host, timeout_s=60)
    return rec.cluster in out.split()


def _delete(rec: UpRecord) -> None:
    with tempfile.TemporaryDirectory(prefix="cth-down-") as d:
        _kind_run(commands.kind_delete(rec.cluster, f"{d}/kubeconfig"), rec.docker_host)


def without_table_sizes(scenario: Scenario) -> Scenario:
    """The scenario as ``up`` realizes it: a run of no phase measures nothing, so the host's
    global table size and buckets (every namespace counts against them, the host's own
    too) stay as they are while the cluster is made; each run on the kept cluster sets them
    and restores them. The cluster config is unchanged, so the kept cluster's fingerprint is
    the one a run of the same file asks for."""
    from harness.scenario.model import HostSpec

    nodes = scenario.node_sysctls.model_copy(
        update={"nf_conntrack_max": None, "nf_conntrack_buckets": None}
    )
    return scenario.model_copy(update={"host": HostSpec(), "node_sysctls": nodes})


def cmd_up(args: argparse.Namespace) -> int:
    from harness import runner
    from harness.backends.base import BackendOptions
    from harness.kernel.journal import HostLock
    from harness.kindbuild import kinddocker
    from harness.scenario.loader import read_scenario

    if args.backend != "kind":
        raise BadInput(
            "`up` keeps a kind cluster between runs; the netns backend needs none (its "
            "cluster starts in about 4 s from the kept control plane its first run makes), "
            "and a kubeconfig cluster is already up",
            field="--backend",
            value=args.backend,
        )
    commands.check_cluster_name(args.name)
    scenario, _ = read_scenario(args.scenario)  # bad input first, exit 2
    scenario = without_table_sizes(scenario)
    runner.require_root(args.backend)
    choice = kinddocker.choose(os.environ)
    if not choice.system:
        why = (
            f"a cluster is kept on a Docker daemon that outlives the command, and {choice.why}"
            " (this project's private dockerd stops when its command ends)"
        )
        if kinddocker.mode(os.environ) == "private":
            raise BadInput(why, field=kinddocker.ENV, value="private")
        raise BackendError(
            f"`up` cannot keep a cluster here: {why}. Start Docker (DOCKER_HOST or the default "
            "socket), or run without `up`: each `run --backend kind` then makes and deletes "
            "its own cluster"
        )
    host = kinddocker.daemon_address(os.environ)
    with HostLock(args.wait):  # no run between the check and the record
        rec = up.read()
        if rec is not None:
            half_made = rec.state == "creating" and not is_same_process(rec.pid, rec.pid_start)
            if half_made or not cluster_exists(rec):
                _say(
                    f"{rec.describe()}: "
                    + ("left half-made by a killed `up`, deleted" if half_made else "gone")
                )
                if half_made:
                    _delete(rec)
                up.remove()
            else:
                raise BadInput(
                    f"a cluster is up already: {rec.describe()}. `conntrack-harness run "
                    "SCENARIO --backend kind` uses it; `conntrack-harness down` deletes it",
                    field="up",
                    value=rec.cluster,
                )
        rec = UpRecord(
            backend="kind",
            cluster=args.name,
            docker_host=host,
            scenario=scenario.name,
            project=__version__,
            made_at=time.time(),
            state="creating",
            pid=os.getpid(),
            pid_start=process_start_time(os.getpid()),
        )
        up.write(rec)
    t0 = time.monotonic()
    options = BackendOptions(keep_cluster=True)
    try:
        # a run of no phase: the cluster made (or reused) and kept, the images loaded, the
        # run's workload brought up on it and removed again
        with runner.ClusterSession(
            scenario, backend="kind", options=options, wait_s=args.wait, notice=_say
        ):
            pass
    except BaseException:
        _after_failed_up(rec)
        raise
    made = up.read() or rec
    up.write(dataclasses.replace(made, state="up", pid=0, pid_start=None))
    print(
        f"up: kind cluster {rec.cluster} on the Docker daemon at {host}, kept "
        f"({time.monotonic() - t0:.0f}s).\n"
        f"  conntrack-harness run {args.scenario} --backend kind   reuses it\n"
        "  conntrack-harness down                                  deletes it"
    )
    return 0


def _after_failed_up(rec: UpRecord) -> None:
    """Drop the record when nothing was made; else keep it for ``down`` (said). A daemon that
    cannot be asked keeps the record: the original failure is the one raised."""
    try:
        made = up.read()
        if made is not None and made.cluster == rec.cluster and not cluster_exists(made):
            up.remove()  # nothing was made: nothing is up
            return
    except (HarnessError, OSError):
        pass
    _say("`up` failed; what it made is kept: `conntrack-harness down` deletes it")


def cmd_down(args: argparse.Namespace) -> int:
    from harness.kernel.journal import HostLock

    rec = up.read()
    if rec is None:
        print("down: nothing was up")
        return 0
    with HostLock(args.wait):  # never under a run that uses it
        try:
            present = cluster_exists(rec)
            if present:
                _delete(rec)
        except CommandFailed as e:
            raise BackendError(f"down: deleting {rec.describe()}: {e}") from e
        up.remove()
    print(f"down: {'deleted' if present else 'already gone'}: {rec.describe()}")
    return 0


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    u = sub.add_parser(
        "up",
        help="make a kind cluster for a scenario and keep it: later `run --backend kind` reuse "
        "it (exit 2 when one is up already)",
    )
    u.add_argument("scenario", metavar="SCENARIO_FILE")
    u.add_argument("--backend", default="kind", help="kind (the only one that needs it)")
    u.add_argument(
        "--name",
        default=os.environ.get("CTH_KIND_CLUSTER") or up.DEFAULT_NAME,
        help=f"the kind cluster's name (default: $CTH_KIND_CLUSTER, else {up.DEFAULT_NAME})",
    )
    add_wait(u)
    u.set_defaults(func=cmd_up)
    d = sub.add_parser("down", help="delete the cluster `up` kept (exit 0 when none was up)")
    add_wait(d, "wait this long for a run's lock (default: refuse at once)")
    d.set_defaults(func=cmd_down)
