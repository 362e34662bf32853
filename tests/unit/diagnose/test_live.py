"""The live reader: host (no root needed to read) and a fresh namespace of our own (kernel)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness.diagnose.live import diagnose_live, live_signals, read_live
from harness.errors import BadInput

CONNTRACK = Path("/proc/net/stat/nf_conntrack")


@pytest.mark.skipif(not CONNTRACK.exists(), reason="no conntrack on this kernel")
def test_host_reading_matches_proc(tmp_path: Path) -> None:
    rc = tmp_path / "resolv.conf"
    rc.write_text("nameserver 10.96.0.10\nsearch default.svc.cluster.local\noptions ndots:5\n")
    dmesg = "nf_conntrack: table full, dropping packet\nother line\n"
    r = read_live(None, resolv_conf=rc, dmesg_text=dmesg)
    limit = int(Path("/proc/sys/net/netfilter/nf_conntrack_max").read_text())
    assert r.max == limit
    assert "drop" in r.stat
    assert "insert_failed" in r.stat
    assert r.table_full == ["nf_conntrack: table full, dropping packet"]
    assert r.resolv_conf is not None
    assert r.resolv_conf.ndots == 5
    s = live_signals(r)
    assert s.table_full_lines == 1
    assert s.ndots == 5
    _, d = diagnose_live(None, resolv_conf=rc, dmesg_text=dmesg)
    assert d.cause == "exhaustion"  # a table-full line is enough to name it
    assert any("ndots:5" in e for e in d.evidence)


def test_unknown_namespace_is_bad_input() -> None:
    with pytest.raises(BadInput, match="netns"):
        read_live("cth-rp-does-not-exist-123")


@pytest.mark.kernel
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to create a namespace")
def test_reads_a_fresh_namespace() -> None:
    name = f"cth-rp-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        r = read_live(name, dmesg_text="")
        assert r.netns == name
        assert r.count == 0  # nothing has been tracked in a new namespace
        assert r.max == int(Path("/proc/sys/net/netfilter/nf_conntrack_max").read_text())
        assert r.stat.get("drop") == 0
        assert r.timeouts["nf_conntrack_tcp_timeout_time_wait"] > 0
        _, d = diagnose_live(name, dmesg_text="")
        assert d.cause == "none"
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
