"""`run --pcap` under the INJECTED race window on netns: tcpdump in the client pods, and the
bundle keeps exactly the same-port pairs whose AAAA the rule dropped (tests/pcapcheck.py; the
same check runs on kind in tests/cluster/test_kind_equivalence.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from tests.pcapcheck import LOAD, PHASES, TIMEOUT_1S, check_race_pcap, no_process_mentions

pytestmark = pytest.mark.kernel

SCENARIO = {
    "name": "race-pcap",
    "cluster": {"nodes": 2, "client_pods": 2, "masquerade_all": True, "dns_config": TIMEOUT_1S},
    "load": LOAD,
    "phases": PHASES,
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
    result = json.loads((reports / "result.json").read_text())
    by = check_race_pcap(result, reports, tmp_path)
    # each phase's resolv.conf, as its remediation left it, and each node's conntrack -S
    with tarfile.open(reports / "bundle.tar.gz") as tar:
        names = {Path(m.name).relative_to(Path(m.name).parts[0]).as_posix(): m for m in tar}
        resolv = {
            ph: tar.extractfile(names[f"phases/{ph}/pods/client-0/resolv.conf"]).read().decode()  # type: ignore[union-attr]
            for ph in by
        }
        for ph in by:
            for node in ("node-1", "node-2"):
                assert f"phases/{ph}/nodes/{node}/conntrack-S.txt" in names
    assert "single-request-reopen" in resolv["single-request-reopen"]
    assert "single-request-reopen" not in resolv["baseline"]
    no_process_mentions(str(tmp_path / "state"))
