"""The bundle reruns as written: rerun.sh finds the CLI, runs the bundle's own scenario, and
the bundle holds each phase's evidence (issue 13 §7)."""

from __future__ import annotations

import copy
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from harness.report.bundle import evidence_files, rerun_args, write_bundle
from harness.report.files import write_reports
from harness.results.evidence import Evidence
from harness.results.schema import RunResult


def _with_command(run: RunResult, command: str) -> RunResult:
    r = copy.deepcopy(run)
    r["command"] = command
    return r


@pytest.mark.parametrize(
    ("command", "args"),
    [
        ("conntrack-harness run scenarios/race.yaml --report-dir /tmp/rep-race", []),
        (
            "conntrack-harness run --backend netns scenarios/race.yaml --pcap --wait 30 "
            "--metrics-textfile /x/m.prom",
            ["--backend", "netns", "--pcap", "--wait", "30"],
        ),
        ("conntrack-harness run scenarios/x.yaml --report-dir=/r --force", ["--force"]),
        ("pytest scenarios/test_race.py -m scenario", ["--backend", "netns"]),
    ],
)
def test_rerun_args(exhaustion: RunResult, command: str, args: list[str]) -> None:
    assert rerun_args(_with_command(exhaustion, command)) == args


def _bundle(tmp_path: Path, run: RunResult, evidence: Path | None = None) -> Path:
    paths = write_reports(
        run,
        tmp_path / "rep",
        scenario_text="name: from-the-bundle\n",
        evidence=Evidence.read(evidence) if evidence is not None else None,
    )
    bundle = paths[-1]
    out = tmp_path / "untar"
    out.mkdir()
    with tarfile.open(bundle) as tar:
        tar.extractall(out, filter="data")
    (root,) = out.iterdir()
    return root


def _fake_cli(bin_dir: Path) -> Path:
    """Stands in for the CLI: records how it was called."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    cli = bin_dir / "conntrack-harness"
    cli.write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$CALLS"\n')
    cli.chmod(0o755)
    return cli


def _sh(script: Path, cwd: Path, path: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(script)],
        cwd=cwd,
        env={"PATH": path, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_rerun_runs_the_bundled_scenario_via_path(tmp_path: Path, exhaustion: RunResult) -> None:
    run = _with_command(
        exhaustion, "conntrack-harness run scenarios/gone.yaml --backend netns --report-dir /r"
    )
    root = _bundle(tmp_path, run)
    _fake_cli(tmp_path / "bin")
    calls = tmp_path / "calls"
    cp = _sh(root / "rerun.sh", tmp_path, f"{tmp_path / 'bin'}:/usr/bin:/bin", CALLS=str(calls))
    assert cp.returncode == 0, cp.stderr
    argv = calls.read_text().splitlines()
    assert argv[:2] == ["run", str(root / "scenario.yaml")]
    assert (root / "scenario.yaml").read_text() == "name: from-the-bundle\n"
    assert argv[2:] == ["--backend", "netns", "--report-dir", str(root / "rerun-report")]


def test_rerun_finds_a_checkouts_venv(tmp_path: Path, exhaustion: RunResult) -> None:
    root = _bundle(tmp_path, exhaustion)
    checkout = tmp_path / "checkout"
    _fake_cli(checkout / ".venv" / "bin")
    calls = tmp_path / "calls"
    cp = _sh(root / "rerun.sh", checkout, "/usr/bin:/bin", CALLS=str(calls))
    assert cp.returncode == 0, cp.stderr
    assert calls.read_text().splitlines()[1] == str(root / "scenario.yaml")


def test_rerun_without_the_cli_says_how_to_get_it(tmp_path: Path, exhaustion: RunResult) -> None:
    root = _bundle(tmp_path, exhaustion)
    cp = _sh(root / "rerun.sh", tmp_path, "/usr/bin:/bin")
    assert cp.returncode == 127
    assert "not found" in cp.stderr
    assert "scripts/bootstrap.sh" in cp.stderr
    assert "CONNTRACK_HARNESS=" in cp.stderr


def test_evidence_layouts(tmp_path: Path) -> None:
    ev = tmp_path / "evidence"
    files = {
        "node-1/conntrack-S.txt": "netns node dir",
        "pods/client-1/resolv.conf": "nameserver 10.96.0.10\n",
        "phases/baseline/nodes/node-1/conntrack-S.txt": "drop=5\n",
        "phases/baseline/pods/client-1/resolv.conf": "options ndots:5\n",
        "phases/fqdn/pods/client-1/resolv.conf": "options ndots:1\n",
        "nodes/kind-worker/iptables-save.txt": "*nat\n",  # kube backends
        "pods/baseline/client-0/resolv.conf": "search x\n",
        "pcap/baseline.pcap": "pcap",
    }
    for rel, text in files.items():
        (ev / rel).parent.mkdir(parents=True, exist_ok=True)
        (ev / rel).write_text(text)
    got = {k: v.read_text() for k, v in evidence_files(ev).items()}
    assert got.pop("nodes/node-1/conntrack-S.txt") == "netns node dir"
    assert got == {k: v for k, v in files.items() if not k.startswith("node-1/")}


def test_bundle_holds_each_phases_evidence(tmp_path: Path, exhaustion: RunResult) -> None:
    ev = tmp_path / "evidence"
    for p in exhaustion["phases"]:
        d = ev / "phases" / p["name"]
        (d / "nodes" / "node-1").mkdir(parents=True)
        (d / "nodes" / "node-1" / "conntrack-S.txt").write_text(f"{p['name']} drop=1\n")
        (d / "pods" / "client-1").mkdir(parents=True)
        (d / "pods" / "client-1" / "resolv.conf").write_text(f"# {p['name']}\n")
    root = _bundle(tmp_path, exhaustion, ev)
    for p in exhaustion["phases"]:
        d = root / "phases" / p["name"]
        assert (d / "nodes" / "node-1" / "conntrack-S.txt").read_text() == f"{p['name']} drop=1\n"
        assert (d / "pods" / "client-1" / "resolv.conf").read_text() == f"# {p['name']}\n"


def test_bundle_evidence_names_are_checked(tmp_path: Path, exhaustion: RunResult) -> None:
    from cthcommon.errors import BadInput

    with pytest.raises(BadInput):
        write_bundle(
            exhaustion, tmp_path / "b.tar.gz", scenario="x", evidence={"../escape/x": "no"}
        )


def test_rerun_sh_is_posix(tmp_path: Path, exhaustion: RunResult) -> None:
    root = _bundle(tmp_path, exhaustion)
    cp = subprocess.run(["sh", "-n", str(root / "rerun.sh")], capture_output=True, check=False)
    assert cp.returncode == 0, cp.stderr
    assert os.access(root / "rerun.sh", os.X_OK)
