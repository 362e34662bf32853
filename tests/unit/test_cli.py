"""The CLI's exit codes and its promise that a measured result is never lost (issue 13, 3-4).

The run itself is replaced by a fake that fills the run's record as the runner does (phases
built by the sample-result model), so these need no root and no kernel. Each case here exited
1 with a traceback, was accepted, or lost the result before the fix.
"""

from __future__ import annotations

import json
import signal
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from cthcommon.errors import BackendError, BadInput
from harness import cli, runner
from harness.backends import registry
from harness.backends.base import BackendOptions
from harness.plan.phase import plan_run
from harness.results.evidence import Evidence
from harness.results.record import RunRecord
from harness.scenario.model import Scenario
from tests.sample_results import PhaseModel, build_phase

ROOT = Path(__file__).resolve().parents[2]


def write_scenario(tmp_path: Path, **extra: Any) -> Path:
    doc: dict[str, Any] = {"name": "exits", "phases": [{"name": "baseline"}], **extra}
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


FakeRun = Callable[..., RunRecord]


def fake_run(
    *phases: PhaseModel,
    then: BaseException | None = None,
    during: Callable[[], None] = lambda: None,
) -> FakeRun:
    """A stand-in for harness.runner.run: the record gets these phases, then ``then`` is
    raised as the real runner raises it (noted on the record first)."""

    def run(record: RunRecord, scenario: Scenario, **kw: Any) -> RunRecord:
        on_phase = kw.get("on_phase")
        for m in phases:
            pr = build_phase(m)
            record.add_phase(pr)
            if on_phase:
                on_phase(pr)
            during()
        if then is not None:
            record.fail(then)
            raise then
        record.evidence = Evidence(
            nodes={"node-1": {"conntrack-S.txt": "cpu=0 found=0\n", "nft-ruleset.txt": "x\n"}},
            phase_pods={"baseline": {"client-0": "nameserver 10.96.0.10\n"}},
        )
        record.finish()
        return record

    return run


@pytest.fixture(autouse=True)
def as_if_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs here are fakes: the CLI's root check passes for any user."""
    monkeypatch.setattr(runner, "require_root", lambda *_a: None)


PASSING = PhaseModel("baseline", new_conns_per_s=1.0, expect=("conntrack.drop == 0",))
FAILING = PhaseModel("baseline", expect=("conntrack.drop == 0",))


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # the default report dir goes under the cwd
    return tmp_path


def only_report_dir(cwd: Path) -> Path:
    (d,) = (cwd / "conntrack-harness-reports").iterdir()
    return d


# --- exit codes -------------------------------------------------------------------------


def test_a_violated_expectation_exits_1_and_keeps_the_result(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "run", fake_run(FAILING))
    assert cli.main(["run", str(write_scenario(in_tmp))]) == 1
    result = json.loads((only_report_dir(in_tmp) / "result.json").read_text())
    assert result["verdict"] == "fail"


def test_a_pass_exits_0_and_writes_to_the_default_report_dir(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "run", fake_run(PASSING))
    assert cli.main(["run", str(write_scenario(in_tmp))]) == 0
    d = only_report_dir(in_tmp)
    assert d.name.startswith("exits-")
    assert json.loads((d / "result.json").read_text())["verdict"] == "pass"
    assert {"report.html", "summary.md", "junit.xml", "bundle.tar.gz", "scenario.yaml"} <= {
        p.name for p in d.iterdir()
    }


def test_a_crash_is_never_exit_1(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "run", fake_run(then=RuntimeError("a bug")))
    assert cli.main(["run", str(write_scenario(in_tmp))]) == 5


@pytest.mark.parametrize("as_program", [True, False])
def test_after_an_interrupt_the_program_ignores_a_second_one_while_it_exits(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, as_program: bool
) -> None:
    """A second Ctrl-C once the host is restored would land in a finalizer while Python shuts
    down and print a traceback after the exit message (seen in the chaos test: SIGINT twice,
    then ``Exception ignored in: Popen.__del__``). The program ignores it; a caller of
    ``main`` with arguments keeps its own handlers."""
    monkeypatch.setattr(runner, "run", fake_run(then=KeyboardInterrupt()))
    argv = ["run", str(write_scenario(in_tmp))]
    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    before = {sig: signal.getsignal(sig) for sig in sigs}
    try:
        if as_program:
            monkeypatch.setattr(sys, "argv", ["conntrack-harness", *argv])
        assert cli.main(None if as_program else argv) == 130
        after = {sig: signal.getsignal(sig) for sig in sigs}
    finally:
        for sig, handler in before.items():
            signal.signal(sig, handler)
    if as_program:
        assert set(after.values()) == {signal.SIG_IGN}
    else:
        assert after == before


def test_a_backend_failure_after_a_phase_exits_3_with_the_measured_phase_written(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(runner, "run", fake_run(PASSING, then=BackendError("node went away")))
    assert cli.main(["run", str(write_scenario(in_tmp))]) == 3
    result = json.loads((only_report_dir(in_tmp) / "result.json").read_text())
    assert result["verdict"] == "error"
    assert "node went away" in result["error"]
    assert [p["name"] for p in result["phases"]] == ["baseline"]
    assert "what was measured is in" in capsys.readouterr().err


@pytest.mark.parametrize(
    "extra",
    [
        {"host": {"nf_conntrack_max": 1_000_000_000_000}},
        {"node_sysctls": {"nf_conntrack_buckets": -5}},
        {
            "phases": [
                {
                    "name": "b",
                    "remediations": [{"kind": "conntrack-sysctls", "nf_conntrack_buckets": 0}],
                }
            ]
        },
        {"load": {"http": None, "dns": None}},
        {"load": {"dns": {"names": [""]}}},
        {"load": {"dns": {"names": ["a b"]}}},
        {"load": {"dns": {"names": ["ok", "bad..name"]}}},
    ],
    ids=[
        "max-1e12",
        "buckets-5",
        "remediation-buckets-0",
        "no-load",
        "name-empty",
        "name-space",
        "name-empty-label",
    ],
)
def test_bad_scenarios_are_refused_by_validate_and_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any]
) -> None:
    monkeypatch.setattr(runner, "run", fake_run(then=AssertionError("must not run")))
    sc = write_scenario(tmp_path, **extra)
    assert cli.main(["validate", str(sc)]) == 2
    assert cli.main(["run", str(sc), "--report-dir", str(tmp_path / "r")]) == 2


def test_names_the_shipped_scenarios_use_still_validate() -> None:
    for f in sorted((ROOT / "scenarios").glob("*.yaml")):
        assert cli.main(["validate", str(f)]) == 0, f


@pytest.mark.parametrize(
    "flags",
    [["--wait", "-5"], ["--wait", "nan"], ["--metrics-port", "70000"], ["--metrics-port", "-1"]],
)
def test_bad_flags_exit_2(tmp_path: Path, flags: list[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["run", str(write_scenario(tmp_path)), *flags])
    assert e.value.code == 2


def test_restore_conntrack_max_has_bounds() -> None:
    for bad in ("0", "10", str(1 << 40)):
        with pytest.raises(SystemExit) as e:
            cli.main(["restore", "--conntrack-max", bad])
        assert e.value.code == 2


def test_restore_conntrack_max_refused_below_the_live_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harness import restore

    reads = {"net.netfilter.nf_conntrack_count": "50000"}
    monkeypatch.setattr(restore.sysctl, "read", lambda k, *a, **kw: reads[k])
    with pytest.raises(BadInput, match="live count 50000"):
        restore.check_conntrack_max_floor(40000)
    restore.check_conntrack_max_floor(60000)


def test_metrics_port_in_use_is_bad_input(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    monkeypatch.setattr(runner, "run", fake_run(then=AssertionError("must not run")))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert cli.main(["run", str(write_scenario(in_tmp)), "--metrics-port", str(port)]) == 2


@pytest.mark.parametrize("where", ["proc", "file"])
def test_an_unusable_report_dir_is_refused_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    monkeypatch.setattr(runner, "run", fake_run(then=AssertionError("must not run")))
    target = Path("/proc/cth-no-such-dir")
    if where == "file":
        target = tmp_path / "a-file"
        target.write_text("")
    assert cli.main(["run", str(write_scenario(tmp_path)), "--report-dir", str(target)]) == 2


# --- results never lost -----------------------------------------------------------------


def test_the_scenario_file_is_read_once(in_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sc = write_scenario(in_tmp)
    text = sc.read_text()
    monkeypatch.setattr(runner, "run", fake_run(PASSING, during=sc.unlink))
    assert cli.main(["run", str(sc)]) == 0
    d = only_report_dir(in_tmp)
    assert (d / "scenario.yaml").read_text() == text
    assert json.loads((d / "result.json").read_text())["verdict"] == "pass"


def test_a_textfile_that_stops_being_writable_does_not_abort_the_run(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    prom_dir = in_tmp / "prom"
    prom_dir.mkdir()
    prom = prom_dir / "cth.prom"

    def break_it() -> None:  # after the first phase: the file becomes a directory
        if prom.is_file():
            prom.unlink()
            prom.mkdir()

    second = PhaseModel("second", new_conns_per_s=1.0, seed=3)
    monkeypatch.setattr(runner, "run", fake_run(PASSING, second, during=break_it))
    argv = ["run", str(write_scenario(in_tmp)), "--metrics-textfile", str(prom)]
    assert cli.main(argv) == 0
    result = json.loads((only_report_dir(in_tmp) / "result.json").read_text())
    assert [p["name"] for p in result["phases"]] == ["baseline", "second"]
    assert "not written" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["missing-dir/cth.prom", "cth.txt"])
def test_an_unusable_textfile_is_refused_before_the_run(
    in_tmp: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setattr(runner, "run", fake_run(then=AssertionError("must not run")))
    argv = ["run", str(write_scenario(in_tmp)), "--metrics-textfile", str(in_tmp / name)]
    assert cli.main(argv) == 2
    assert not (in_tmp / "conntrack-harness-reports").exists()


def test_report_rebuilds_from_the_typed_evidence_of_a_kube_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nodes/<node>/ holds files, pods are per phase: `report` used to read directories as
    files and crash."""
    monkeypatch.setattr(runner, "run", fake_run(PASSING))
    d = tmp_path / "r"
    assert cli.main(["run", str(write_scenario(tmp_path)), "--report-dir", str(d)]) == 0
    assert (d / "evidence/nodes/node-1/conntrack-S.txt").is_file()
    assert (d / "evidence/phases/baseline/pods/client-0/resolv.conf").is_file()
    (d / "bundle.tar.gz").unlink()
    assert cli.main(["report", str(d / "result.json")]) == 0
    with tarfile.open(d / "bundle.tar.gz") as tar:
        names = {m.name.split("/", 1)[1] for m in tar.getmembers()}
    assert "nodes/node-1/conntrack-S.txt" in names
    assert "nodes/node-1/nft-ruleset.txt" in names
    assert "phases/baseline/pods/client-0/resolv.conf" in names


def test_unwritable_report_parts_never_cost_result_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "run", fake_run(PASSING))
    d = tmp_path / "r"
    (d / "report.html").mkdir(parents=True)  # not writable as a file, even by root
    assert cli.main(["run", str(write_scenario(tmp_path)), "--report-dir", str(d)]) == 5
    assert json.loads((d / "result.json").read_text())["verdict"] == "pass"
    assert (d / "bundle.tar.gz").is_file()  # the other reports were still written


# --- nothing on the host changes before preflight --------------------------------------


def fake_tool(tmp_path: Path, name: str, rc: int, stderr: str = "") -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    p = bin_dir / name
    p.write_text(f"#!/bin/sh\necho '{stderr}' >&2\nexit {rc}\n")
    p.chmod(0o755)


class Touched(Exception):
    pass


@pytest.fixture
def host_untouchable(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The host lock, the journal and the sysctl guard raise if reached; root and the
    conntrack count read are faked so the preflight runs anywhere."""
    calls: list[str] = []

    def touch(what: str) -> Callable[..., Any]:
        def f(*_a: Any, **_kw: Any) -> Any:
            calls.append(what)
            raise Touched(what)

        return f

    monkeypatch.setattr(runner, "HostLock", touch("lock"))
    monkeypatch.setattr(runner.Journal, "create", touch("journal"))
    monkeypatch.setattr(runner.sysctl, "SysctlGuard", touch("guard"))
    monkeypatch.setattr(runner, "require_root", lambda *_a: None)
    monkeypatch.setattr(runner.sysctl, "read", lambda *_a, **_kw: "100")
    return calls


def test_kind_checks_docker_before_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host_untouchable: list[str]
) -> None:
    fake_tool(tmp_path, "docker", 1, "Cannot connect to the Docker daemon")
    fake_tool(tmp_path, "kind", 0)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("CTH_KIND_DOCKER", "system")  # the docker already on PATH
    sc = write_scenario(tmp_path, host={"nf_conntrack_max": 4096})
    argv = ["run", str(sc), "--backend", "kind", "--report-dir", str(tmp_path / "r")]
    assert cli.main(argv) == 3
    assert host_untouchable == []


def test_a_corefile_coredns_rejects_is_exit_2_before_the_host_lock(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    host_untouchable: list[str],
) -> None:
    from harness.backends.netns.k8s import corefilecheck

    corefile = ".:53 {\n    kubernetes cluster.local\n    no_such_plugin 30\n}\n"
    (tmp_path / "my.Corefile").write_text(corefile)
    parsed: list[str] = []

    def coredns_says(binary: Path, text: str, upstream: str, timeout_s: float) -> Any:
        # what CoreDNS answers on the text the run would give it (kubeconfig line added)
        parsed.append(text)
        written = text.replace("kubernetes cluster.local", "kubernetes cluster.local {\n k\n}")
        error = "/tmp/c/Corefile:5 - Error during parsing: Unknown directive 'no_such_plugin'"
        return corefilecheck.Verdict(False, error), written

    monkeypatch.setattr(corefilecheck, "locate", lambda *_a: Path("/c/coredns"))
    monkeypatch.setattr(corefilecheck, "_parse", coredns_says)
    sc = write_scenario(tmp_path, cluster={"coredns": {"corefile": "my.Corefile"}})
    assert cli.main(["run", str(sc), "--report-dir", str(tmp_path / "r")]) == 2
    assert parsed == [corefile]  # the user's file, as written
    assert host_untouchable == []  # no lock, no journal, no sysctl
    *banner, err = capsys.readouterr().err.strip().splitlines()  # the run's banner, then why
    assert len(banner) <= 1
    assert "field 'cluster.coredns.corefile'" in err
    # CoreDNS's words at the line of the user's file, never the file itself
    assert f"{tmp_path / 'my.Corefile'}:3 - Error during parsing: Unknown directive" in err


def test_the_removed_k3s_backend_is_bad_input_naming_why_and_the_alternatives(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], host_untouchable: list[str]
) -> None:
    sc = write_scenario(tmp_path, host={"nf_conntrack_max": 4096})
    argv = ["run", str(sc), "--backend", "k3s", "--report-dir", str(tmp_path / "r")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1  # one line
    assert err.startswith("conntrack-harness: field '--backend': the k3s backend was removed: ")
    assert "cannot be built or pulled here" in err
    assert "403 Forbidden" in err
    assert "use kind or kubeconfig instead" in err
    assert host_untouchable == []
    assert not (tmp_path / "r").exists()


def test_kind_missing_is_found_before_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host_untouchable: list[str]
) -> None:
    """The system Docker answers and has the node image, but there is no kind: not on
    PATH, not in the cache, and no go to build the pinned one."""
    from harness.backends.kube import kind as kind_mod

    fake_tool(tmp_path, "docker", 0)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setenv("CONNTRACK_HARNESS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(kind_mod, "GO_FALLBACK", str(tmp_path / "no-go"))
    monkeypatch.setenv("CTH_KIND_DOCKER", "system")
    sc = write_scenario(tmp_path, host={"nf_conntrack_max": 4096})
    argv = ["run", str(sc), "--backend", "kind", "--report-dir", str(tmp_path / "r")]
    assert cli.main(argv) == 2
    assert host_untouchable == []


def test_private_kind_tools_are_checked_before_the_host(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    host_untouchable: list[str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With no Docker daemon answering, the default (auto) falls back to its own dockerd,
    says why, and checks that path's tools (debootstrap here, not on this PATH) before the
    lock; nothing on the host is touched."""
    fake_tool(tmp_path, "docker", 1, "Cannot connect to the Docker daemon")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.delenv("CTH_KIND_DOCKER", raising=False)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nowhere.sock")
    sc = write_scenario(tmp_path, host={"nf_conntrack_max": 4096})
    argv = ["run", str(sc), "--backend", "kind", "--report-dir", str(tmp_path / "r")]
    assert cli.main(argv) == 2
    assert host_untouchable == []
    err = capsys.readouterr().err
    assert (
        "[kind] docker: private dockerd (no Docker daemon answers at unix:///nowhere.sock: "
        "`docker info`: Cannot connect to the Docker daemon)"
    ) in err
    assert "[kind] node image: built here from the pinned upstream binaries (no Docker" in err
    assert "conntrack-harness: error: --backend kind needs " in err


@pytest.mark.parametrize("value", ["yes", "Auto", "docker"])
def test_a_bad_kind_docker_mode_is_bad_input_before_the_host(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    host_untouchable: list[str],
    capsys: pytest.CaptureFixture[str],
    value: str,
) -> None:
    monkeypatch.setenv("CTH_KIND_DOCKER", value)
    sc = write_scenario(tmp_path, host={"nf_conntrack_max": 4096})
    argv = ["run", str(sc), "--backend", "kind", "--report-dir", str(tmp_path / "r")]
    assert cli.main(argv) == 2
    assert host_untouchable == []
    err = capsys.readouterr().err
    assert "CTH_KIND_DOCKER" in err
    for allowed in ("auto", "private", "system"):
        assert allowed in err


def test_an_unreachable_api_server_exits_3_before_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, host_untouchable: list[str]
) -> None:
    fake_tool(tmp_path, "kubectl", 1, "The connection to the server 10.0.0.1:6443 was refused")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    kc = tmp_path / "kc.yaml"
    kc.write_text("apiVersion: v1\nkind: Config\n")
    argv = [
        "run",
        str(write_scenario(tmp_path)),
        "--backend",
        "kubeconfig",
        "--kubeconfig",
        str(kc),
        "--loadgen-image",
        "reg.example/lg",
        "--report-dir",
        str(tmp_path / "r"),
    ]
    assert cli.main(argv) == 3
    assert host_untouchable == []


def test_kubeconfig_takes_the_host_lock_only_when_it_changes_the_host() -> None:
    plain = Scenario.model_validate({"name": "s", "phases": [{"name": "p"}]})
    shrink = Scenario.model_validate(
        {"name": "s", "host": {"nf_conntrack_max": 4096}, "phases": [{"name": "p"}]}
    )
    disruptive = BackendOptions(allow_disruptive=True)
    assert not registry.changes_host("kubeconfig", plan_run(plain), BackendOptions())
    assert not registry.changes_host("kubeconfig", plan_run(plain), disruptive)
    assert registry.changes_host("kubeconfig", plan_run(shrink), disruptive)
    for backend in ("netns", "kind"):
        assert registry.changes_host(backend, plan_run(plain), BackendOptions())


def test_environment_sysctls_are_read_under_the_host_lock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    order: list[str] = []

    class Lock:
        def __init__(self, _wait: float) -> None:
            pass

        def __enter__(self) -> None:
            order.append("lock")

        def __exit__(self, *exc: object) -> None:
            order.append("unlock")

    def env(_backend: str) -> Any:
        order.append("environment")
        raise Touched("stop here")

    monkeypatch.setattr(runner, "HostLock", Lock)
    monkeypatch.setattr(runner, "environment", env)
    monkeypatch.setattr(runner, "require_root", lambda *_a: None)
    monkeypatch.setattr(runner, "preflight", lambda *_a, **_kw: None)
    monkeypatch.setattr(runner, "check_backend_ready", lambda *_a: None)
    scenario = Scenario.model_validate({"name": "s", "phases": [{"name": "p"}]})
    with pytest.raises(Touched), runner.ClusterSession(scenario):
        pass
    assert order == ["lock", "environment", "unlock"]


def test_the_kind_workflow_counts_only_0_and_1_as_measured_results() -> None:
    text = (ROOT / ".github/workflows/kind.yml").read_text()
    assert "-le 1" not in text
    assert "result.json" in text
