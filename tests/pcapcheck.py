"""What `run --pcap` must show under the INJECTED race window, on any backend: tcpdump in the
client pods, and the bundle keeps exactly the same-port pairs whose AAAA the rule dropped
(tests/kernel/test_pcap_capture.py on netns, tests/cluster/test_kind_equivalence.py on kind)."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path
from typing import Any

from harness.capture.pcap import read_pcap

FAULT = [{"kind": "race-window", "probability": 0.5}]
PHASES = [
    {"name": "baseline", "faults": FAULT},
    {
        "name": "single-request-reopen",
        "faults": FAULT,
        "remediations": [
            {"kind": "resolver-option", "options": [{"name": "single-request-reopen"}]}
        ],
    },
]
LOAD = {
    "duration_s": 3,
    "http": None,
    "dns": {
        "rate": 60,
        "resolver": "glibc",
        "names": ["http-server.default.svc.cluster.local."],
        "lookups_per_process": 1,
    },
}
# one pair per lookup, and a lost AAAA costs 1 s instead of 5
TIMEOUT_1S = {"options": [{"name": "timeout", "value": "1"}]}


def check_race_pcap(result: dict[str, Any], reports: Path, tmp: Path) -> dict[str, Any]:
    """The two phases' captures against the fault's own counters, and the bundle's reduced
    pcaps read back by tcpdump. Returns the phases by name."""
    by = {p["name"]: p for p in result["phases"]}
    base, reopen = by["baseline"], by["single-request-reopen"]
    cap = base["capture"]
    assert cap["kernel_dropped"] == 0
    # every pair the rule hit is in the capture as a pair whose AAAA got no answer
    hits = base["fault"]["hits"]
    assert hits > 10
    assert abs(cap["unanswered_pairs"] - hits) <= max(2, hits // 20), (cap, hits)
    assert cap["unanswered_queries"] == cap["unanswered_pairs"]  # only the AAAA is lost
    assert cap["same_port_pairs"] >= cap["unanswered_pairs"]
    # the window the drop draws from is counted too: at least the pairs it hit
    assert base["fault"]["window_open"] >= hits
    # single-request-reopen sends each query from a new port: no pair, nothing for the rule
    assert reopen["capture"]["same_port_pairs"] == 0
    assert reopen["capture"]["unanswered_pairs"] == 0
    assert reopen["fault"]["hits"] == 0
    # the bundle carries the reduced pcap; tcpdump itself reads it back packet for packet
    with tarfile.open(reports / "bundle.tar.gz") as tar:
        names = {Path(m.name).relative_to(Path(m.name).parts[0]).as_posix(): m for m in tar}
        data = tar.extractfile(names["pcap/baseline.pcap"]).read()  # type: ignore[union-attr]
        assert "pcap/single-request-reopen.pcap" in names
    kept = read_pcap(data)
    aaaa_queries = [p for p in kept.packets if not p.response and p.qtype == 28]
    assert len(aaaa_queries) == cap["unanswered_pairs"]
    (tmp / "baseline.pcap").write_bytes(data)
    shown = subprocess.run(
        ["tcpdump", "-n", "-r", str(tmp / "baseline.pcap")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(shown.stdout.splitlines()) == len(kept.records)
    assert shown.stdout.count("AAAA?") == cap["unanswered_pairs"]
    return by


def no_process_mentions(needle: str) -> None:
    """No process of the run is left (its tcpdumps included): none has ``needle`` in argv."""
    raw = needle.encode()
    for p in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            assert raw not in p.read_bytes(), p
        except OSError:
            continue
