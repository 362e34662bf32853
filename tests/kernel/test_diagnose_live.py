"""The live reader on a fresh namespace of our own (root)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from harness.diagnose.live import diagnose_live, read_live


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
