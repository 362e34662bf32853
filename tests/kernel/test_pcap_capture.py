"""`run --pcap` under the INJECTED race window: tcpdump in the client pods, and the bundle keeps
exactly the same-port pairs whose AAAA the rule dropped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from harness.capture.pcap import read_pcap

pytestmark = pytest.mark.kernel

SCENARIO = {
    "name": "race-pcap",
    "cluster": {
        "nodes": 2,
        "client_pods": 2,
        "masquerade_all": True,
        # one pair per lookup, and a lost AAAA costs 1 s instead of 5
        "dns_config": {"options": [{"name": "timeout", "value": "1"}]},
    },
    "load": {
        "duration_s": 3,
        "http": None,
        "dns": {
            "rate": 60,
            "resolver": "glibc",
            "names": ["http-server.default.svc.cluster.local."],
            "lookups_per_process": 1,
        },
    },
    "phases": [
        {"name": "baseline", "faults": [{"kind": "race-window", "probability": 0.5}]},
        {
            "name": "single-request-reopen",
            "faults": [{"kind": "race-window", "probability": 0.5}],
            "remediations": [
                {"kind": "resolver-option", "options": [{"name": "single-request-reopen"}]}
            ],
        },
    ],
}


def test_pcap_keeps_the_unanswered_same_port_pairs_INJECTED(
    tmp_path: Path, host_unchanged: object
) -> None:
    f = tmp_path / "race-pcap.yaml"
    f.write_text(yaml.safe_dump(SCENARIO))
    reports = tmp_path / "reports"
    env = {**os.environ, "CONNTRACK_HARNESS_STATE_DIR": str(tmp_path / "state")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            str(f),
            "--pcap",
            "--report-dir",
            str(reports),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode in (0, 1, 6), out.stderr  # a verdict, whichever
    by = {p["name"]: p for p in json.loads((reports / "result.json").read_text())["phases"]}
    base, reopen = by["baseline"], by["single-request-reopen"]
    cap = base["capture"]
    assert cap["kernel_dropped"] == 0
    # every pair the rule hit is in the capture as a pair whose AAAA got no answer
    hits = base["fault"]["hits"]
    assert hits > 10
    assert abs(cap["unanswered_pairs"] - hits) <= max(2, hits // 20), (cap, hits)
    assert cap["unanswered_queries"] == cap["unanswered_pairs"]  # only the AAAA is lost
    assert cap["same_port_pairs"] >= cap["unanswered_pairs"]
    # single-request-reopen sends each query from a new port: no pair, nothing for the rule
    assert reopen["capture"]["same_port_pairs"] == 0
    assert reopen["capture"]["unanswered_pairs"] == 0
    assert reopen["fault"]["hits"] == 0
    # the bundle carries the reduced pcap; tcpdump itself reads it back packet for packet
    with tarfile.open(reports / "bundle.tar.gz") as tar:
        names = {Path(m.name).relative_to(Path(m.name).parts[0]).as_posix(): m for m in tar}
        data = tar.extractfile(names["pcap/baseline.pcap"]).read()  # type: ignore[union-attr]
        assert "pcap/single-request-reopen.pcap" in names
        # each phase's resolv.conf, as its remediation left it, and each node's conntrack -S
        resolv = {
            ph: tar.extractfile(names[f"phases/{ph}/pods/client-0/resolv.conf"]).read().decode()  # type: ignore[union-attr]
            for ph in by
        }
        for ph in by:
            for node in ("node-1", "node-2"):
                assert f"phases/{ph}/nodes/{node}/conntrack-S.txt" in names
    assert "single-request-reopen" in resolv["single-request-reopen"]
    assert "single-request-reopen" not in resolv["baseline"]
    kept = read_pcap(data)
    aaaa_queries = [p for p in kept.packets if not p.response and p.qtype == 28]
    assert len(aaaa_queries) == cap["unanswered_pairs"]
    (tmp_path / "baseline.pcap").write_bytes(data)
    shown = subprocess.run(
        ["tcpdump", "-n", "-r", str(tmp_path / "baseline.pcap")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(shown.stdout.splitlines()) == len(kept.records)
    assert shown.stdout.count("AAAA?") == cap["unanswered_pairs"]
    # no tcpdump of this run is left running
    needle = str(tmp_path / "state").encode()
    for p in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            assert needle not in p.read_bytes(), p
        except OSError:
            continue
