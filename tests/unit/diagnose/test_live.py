"""The live reader on the host (no root needed to read); a fresh namespace of our own is in
tests/kernel/test_diagnose_live.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from cthcommon.errors import BadInput
from harness.diagnose.live import diagnose_live, live_signals, read_live

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
