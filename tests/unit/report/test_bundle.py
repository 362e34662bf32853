"""The bug-report bundle's layout and contents."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

import pytest

from cthcommon.errors import BadInput
from harness.report.bundle import NodeEnv, write_bundle
from harness.results.schema import RunResult


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        out = {}
        for m in tar.getmembers():
            f = tar.extractfile(m)
            assert f is not None
            out[m.name.split("/", 1)[1]] = f.read()
        return out


def test_bundle_contents(tmp_path: Path, exhaustion: RunResult) -> None:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("name: conntrack-exhaustion\nphases: [{name: baseline}]\n")
    pcap = tmp_path / "pairs.pcap"
    pcap.write_bytes(b"\xd4\xc3\xb2\xa1fake")
    ipt = "*nat\n:KUBE-SERVICES - [0:0]\nCOMMIT\n"
    out = write_bundle(
        exhaustion,
        tmp_path / "out" / "bug.tar.gz",
        scenario=scenario,
        nodes={
            "node-1": NodeEnv(iptables_save=ipt, conntrack_stats="cpu=0 drop=3\n"),
            "node-2": NodeEnv(iptables_save=ipt),
        },
        pod_resolv_conf={"client-1": "nameserver 10.96.0.10\noptions ndots:5\n"},
        pcaps={"unanswered-same-port": pcap},
        kernel="Linux 6.18.0 x86_64",
    )
    files = _members(out)
    assert files["scenario.yaml"] == scenario.read_bytes()
    assert json.loads(files["result.json"]) == exhaustion
    assert files["nodes/node-1/iptables-save.txt"].decode() == ipt
    assert files["nodes/node-1/conntrack-S.txt"] == b"cpu=0 drop=3\n"
    assert "nodes/node-2/conntrack-S.txt" not in files
    assert files["pods/client-1/resolv.conf"].startswith(b"nameserver 10.96.0.10")
    assert files["pcap/unanswered-same-port.pcap"] == pcap.read_bytes()
    assert files["environment/kernel.txt"] == b"Linux 6.18.0 x86_64\n"
    for k, v in exhaustion["environment"]["sysctls"].items():
        assert f"{k} = {v}" in files["environment/sysctls.txt"].decode()
    log = [ln for p in exhaustion["phases"] for ln in p["conntrack"]["table_full_log"]]
    assert log
    assert files["logs/table-full.log"].decode().splitlines() == log
    assert exhaustion["command"] in files["rerun.sh"].decode()
    readme = files["README.md"].decode()
    assert exhaustion["command"] in readme
    assert all(f"`{name}`" in readme for name in files if name != "README.md")


def test_bundle_is_deterministic(tmp_path: Path, race: RunResult) -> None:
    a = write_bundle(race, tmp_path / "a.tar.gz", scenario="name: x\n")
    b = write_bundle(race, tmp_path / "b.tar.gz", scenario="name: x\n")
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


@pytest.mark.parametrize("node", ["../etc", "a/b", ""])
def test_unsafe_names_refused(tmp_path: Path, race: RunResult, node: str) -> None:
    with pytest.raises(BadInput, match="node"):
        write_bundle(race, tmp_path / "x.tar.gz", scenario="x", nodes={node: NodeEnv("x")})


def test_bad_inputs(tmp_path: Path, race: RunResult) -> None:
    with pytest.raises(BadInput, match=r"tar\.gz"):
        write_bundle(race, tmp_path / "x.zip", scenario="x")
    with pytest.raises(BadInput, match="not found"):
        write_bundle(race, tmp_path / "x.tar.gz", scenario=tmp_path / "missing.yaml")
