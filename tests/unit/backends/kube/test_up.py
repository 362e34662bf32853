"""`conntrack-harness up`/`down` without a cluster: the record, which run reuses the kept
cluster, and the refusals and answers a user gets before anything is made (no root)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import pytest
import yaml

from cthcommon.errors import BackendError, BadInput
from harness import cli, upcli
from harness.backends.kube import up
from harness.backends.kube.kind import KindSettings
from harness.backends.kube.up import UpRecord
from harness.kindbuild import kinddocker

HOST = "unix:///run/user-docker.sock"
SYSTEM = kinddocker.Choice(True, "answers", "system (...)", "kindest/node:v1", "present")
PRIVATE = kinddocker.private("no Docker daemon answers", None)


def record(**over: object) -> UpRecord:
    base = UpRecord("kind", "cth-up", HOST, "conntrack-exhaustion", "0.1.0", time.time())
    return dataclasses.replace(base, **over)  # type: ignore[arg-type]


def scenario_file(tmp_path: Path) -> str:
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump({"name": "up-test", "phases": [{"name": "baseline"}]}))
    return str(p)


def test_the_record_round_trips_and_an_unreadable_one_is_none() -> None:
    assert up.read() is None
    rec = record(state="creating", pid=os.getpid())
    up.write(rec)
    assert up.read() == rec
    up.record_path().write_text("{not json")
    assert up.read() is None
    up.remove()
    up.remove()  # idempotent
    assert not up.record_path().exists()


def test_a_kind_run_on_the_same_daemon_reuses_and_keeps_the_up_cluster() -> None:
    up.write(record())
    env = {"DOCKER_HOST": HOST}
    s = KindSettings.from_env(env, SYSTEM)
    assert (s.cluster_name, s.keep_cluster, s.up) == ("cth-up", True, True)
    # the user naming it is the same; naming another, or another daemon, is not this one
    assert KindSettings.from_env({**env, "CTH_KIND_CLUSTER": "cth-up"}, SYSTEM).up
    other = KindSettings.from_env({**env, "CTH_KIND_CLUSTER": "mine"}, SYSTEM)
    assert (other.cluster_name, other.keep_cluster, other.up) == ("mine", False, False)
    elsewhere = KindSettings.from_env({"DOCKER_HOST": "unix:///other.sock"}, SYSTEM)
    assert (elsewhere.cluster_name, elsewhere.up) == (None, False)
    # the private dockerd stops with its run: it never holds the up cluster
    assert not KindSettings.from_env(env, PRIVATE).up


def test_without_a_record_a_kind_run_is_as_before() -> None:
    s = KindSettings.from_env({"DOCKER_HOST": HOST}, SYSTEM)
    assert (s.cluster_name, s.keep_cluster, s.up) == (None, False, False)


def test_down_with_nothing_up_says_so_and_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["down"]) == 0
    assert capsys.readouterr().out.strip() == "down: nothing was up"


def test_up_on_netns_is_refused_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["up", scenario_file(tmp_path), "--backend", "netns"]) == 2
    err = capsys.readouterr().err
    assert "--backend" in err
    assert "kept control plane" in err
    assert up.read() is None


def _args(tmp_path: Path, **over: object) -> argparse.Namespace:
    ns = {"scenario": scenario_file(tmp_path), "backend": "kind", "name": "cth-up", "wait": 0.0}
    return argparse.Namespace(**{**ns, **over})


@pytest.fixture
def as_root_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    from harness import runner

    monkeypatch.setattr(runner, "require_root", lambda backend: None)
    monkeypatch.setenv("CONNTRACK_HARNESS_LOCK", str(tmp_path / "run.lock"))
    monkeypatch.setenv("DOCKER_HOST", HOST)
    return monkeypatch


def test_up_needs_a_docker_daemon_that_outlives_it(
    as_root_on: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    as_root_on.setattr(kinddocker, "choose", lambda environ: PRIVATE)
    with pytest.raises(BackendError, match="outlives the command"):
        upcli.cmd_up(_args(tmp_path))
    as_root_on.setenv(kinddocker.ENV, "private")  # asked for: bad input, exit 2
    with pytest.raises(BadInput, match="outlives the command"):
        upcli.cmd_up(_args(tmp_path))
    assert up.read() is None


def test_up_when_a_cluster_is_up_says_which_and_exits_2(
    as_root_on: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    as_root_on.setattr(kinddocker, "choose", lambda environ: SYSTEM)
    as_root_on.setattr(upcli, "cluster_exists", lambda rec: True)
    up.write(record())
    with pytest.raises(BadInput, match="a cluster is up already: kind cluster cth-up") as e:
        upcli.cmd_up(_args(tmp_path))
    assert e.value.exit_code == 2
    assert up.read() == record(made_at=up.read().made_at)  # type: ignore[union-attr]


def test_a_record_whose_cluster_is_gone_is_replaced(
    as_root_on: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The record names a cluster the daemon no longer has: `up` makes it again (here the
    session is stopped at its start, so the record of the attempt is dropped again)."""
    from harness import runner

    as_root_on.setattr(kinddocker, "choose", lambda environ: SYSTEM)
    as_root_on.setattr(upcli, "cluster_exists", lambda rec: False)
    seen: list[UpRecord | None] = []

    class Stop(Exception):
        pass

    def session(*a: object, **k: object) -> object:
        seen.append(up.read())
        raise Stop

    as_root_on.setattr(runner, "ClusterSession", session)
    up.write(record(cluster="old"))
    with pytest.raises(Stop):
        upcli.cmd_up(_args(tmp_path))
    made = seen[0]
    assert made is not None
    assert (made.cluster, made.state, made.pid) == (
        "cth-up",
        "creating",
        os.getpid(),
    )
    assert up.read() is None  # nothing was made: nothing is up


def test_a_cluster_a_killed_up_left_half_made_is_deleted_and_made_again(
    as_root_on: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The record says "creating" and the `up` that wrote it is gone (a PID that ended, or
    one reused by another process): its half-made cluster is deleted, then made again."""
    import subprocess

    from harness import runner
    from harness.kernel.journal import process_start_time

    as_root_on.setattr(kinddocker, "choose", lambda environ: SYSTEM)
    as_root_on.setattr(upcli, "cluster_exists", lambda rec: True)
    deleted: list[str] = []
    as_root_on.setattr(upcli, "_delete", lambda rec: deleted.append(rec.cluster))

    class Stop(Exception):
        pass

    def session(*a: object, **k: object) -> object:
        raise Stop

    as_root_on.setattr(runner, "ClusterSession", session)
    ended = subprocess.Popen(["true"])
    ended.wait()
    dead = record(state="creating", pid=ended.pid, pid_start=None)
    for rec in (dead, record(state="creating", pid=os.getpid(), pid_start=1)):  # reused PID
        up.write(rec)
        with pytest.raises(Stop):
            upcli.cmd_up(_args(tmp_path))
    assert deleted == ["cth-up", "cth-up"]
    # a live `up` (this process, its own start time) is not half-made: it is up already
    up.write(record(state="creating", pid=os.getpid(), pid_start=process_start_time(os.getpid())))
    with pytest.raises(BadInput, match="a cluster is up already"):
        upcli.cmd_up(_args(tmp_path))


def test_a_failed_up_whose_daemon_cannot_be_asked_keeps_the_record_and_its_own_error(
    as_root_on: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cthcommon.errors import CommandFailed
    from harness import runner

    as_root_on.setattr(kinddocker, "choose", lambda environ: SYSTEM)

    def exists(rec: UpRecord) -> bool:
        raise CommandFailed(["kind", "get", "clusters"], 1, "Cannot connect to the Docker daemon")

    as_root_on.setattr(upcli, "cluster_exists", exists)

    class Stop(Exception):
        pass

    def session(*a: object, **k: object) -> object:
        raise Stop

    as_root_on.setattr(runner, "ClusterSession", session)
    with pytest.raises(Stop):  # the session's failure, not the daemon's
        upcli.cmd_up(_args(tmp_path))
    rec = up.read()
    assert rec is not None
    assert rec.state == "creating"
    assert "`conntrack-harness down` deletes it" in capsys.readouterr().err


def test_up_leaves_the_host_table_size_alone_and_keeps_the_cluster_config(
    as_root_on: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`up` makes a cluster and measures nothing: the session it opens gets the scenario
    without the host-global max and buckets (host: or node_sysctls:), its node timeouts and
    cluster config as written, so the kept cluster's fingerprint is the one a run asks for."""
    from harness import runner
    from harness.backends.kube import kindconfig
    from harness.backends.kube.hostsysctl import run_host_sysctls
    from harness.plan.phase import plan_run
    from harness.scenario.loader import read_scenario

    as_root_on.setattr(kinddocker, "choose", lambda environ: SYSTEM)
    path = tmp_path / "sized.yaml"
    doc = {
        "name": "up-sizes",
        "host": {"nf_conntrack_max": 2048, "nf_conntrack_buckets": 512},
        "node_sysctls": {"nf_conntrack_max": 4096, "tcp_timeout_time_wait": 30},
        "cluster": {"nodes": 2, "kube_proxy": {"mode": "nftables"}},
        "phases": [{"name": "baseline"}],
    }
    path.write_text(yaml.safe_dump(doc))
    given: list[object] = []

    class Stop(Exception):
        pass

    def session(scenario: object, **k: object) -> object:
        given.append(scenario)
        raise Stop

    as_root_on.setattr(runner, "ClusterSession", session)
    with pytest.raises(Stop):
        upcli.cmd_up(_args(tmp_path, scenario=str(path)))
    (made,) = given
    written, _ = read_scenario(str(path))
    assert made.host.nf_conntrack_max is None  # type: ignore[attr-defined]
    assert made.host.nf_conntrack_buckets is None  # type: ignore[attr-defined]
    assert made.node_sysctls.nf_conntrack_max is None  # type: ignore[attr-defined]
    assert made.node_sysctls.tcp_timeout_time_wait == 30  # type: ignore[attr-defined]
    # the host guard gets nothing to set; a run of the same file sets the max (node_sysctls')
    assert run_host_sysctls(plan_run(made)) == {}  # type: ignore[arg-type]
    assert run_host_sysctls(plan_run(written))["net.netfilter.nf_conntrack_max"] == "4096"
    assert kindconfig.fingerprint(plan_run(made)) == kindconfig.fingerprint(  # type: ignore[arg-type]
        plan_run(written)
    )
