"""The one evidence layout: written and read back the same, whichever backend filled it."""

from __future__ import annotations

from pathlib import Path

from harness.results.evidence import Evidence


def test_round_trip_of_every_part(tmp_path: Path) -> None:
    ev = Evidence(
        nodes={"node-1": {"iptables-save.txt": "*nat\n", "conntrack-S.txt": "cpu=0\n"}},
        pods={"client-0": "nameserver 10.96.0.10\n"},
        phase_pods={"baseline": {"cth-ab12-client-0": "options ndots:5\n"}},
        pcaps={"race": b"\xd4\xc3\xb2\xa1binary"},
    )
    ev.write(tmp_path / "evidence")
    assert Evidence.read(tmp_path / "evidence") == ev


def test_read_takes_only_the_layout(tmp_path: Path) -> None:
    root = tmp_path / "evidence"
    (root / "nodes/node-1/deeper").mkdir(parents=True)  # a directory where files belong
    (root / "nodes/node-1/deeper/x.txt").write_text("x")
    (root / "stray.txt").write_text("y")
    (root / "nodes/node-1/nft-ruleset.txt").write_text("table\n")
    ev = Evidence.read(root)
    assert ev.nodes == {"node-1": {"nft-ruleset.txt": "table\n"}}
    assert sorted(ev.unknown) == ["nodes/node-1/deeper/x.txt", "stray.txt"]


def test_no_directory_is_empty_evidence(tmp_path: Path) -> None:
    assert Evidence.read(tmp_path / "none") == Evidence()
