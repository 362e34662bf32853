"""Live diagnose looks only at its window and its own namespace (issue 13 §2); what the
diagnosis makes of the lines it keeps is tests/unit/judge/test_diagnosis.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.diagnose.live import diagnose_live, read_live
from harness.diagnose.procfs import dmesg_seconds, table_full_lines

CONNTRACK = Path("/proc/net/stat/nf_conntrack")
OLD_RUN = [
    "[  100.5] nf_conntrack: table full in netns 4026532001, dropping packet",
    "[  101.0] nf_conntrack: table full, dropping packet",
]
RECENT = "[ 5000.0] nf_conntrack: table full, dropping packet"


def test_dmesg_stamp() -> None:
    assert dmesg_seconds(OLD_RUN[0]) == 100.5
    assert dmesg_seconds("nf_conntrack: table full, dropping packet") is None


def test_window_and_initial_namespace() -> None:
    text = "\n".join([*OLD_RUN, RECENT])
    assert table_full_lines(text, since_s=4000.0) == [RECENT]
    assert table_full_lines(text, initial_only=True) == [OLD_RUN[1], RECENT]
    assert table_full_lines(text, 4026532001, since_s=4000.0) == []


@pytest.mark.skipif(not CONNTRACK.exists(), reason="no conntrack on this kernel")
def test_idle_host_with_old_lines_is_not_exhaustion() -> None:
    """Old lines (another run's, another namespace's) must not make an idle host 'exhausted'."""
    _, d = diagnose_live(None, dmesg_text="\n".join(OLD_RUN), window_s=300.0, now_s=5100.0)
    assert d.cause != "exhaustion"
    assert any("last 300 s" in e for e in d.evidence)
    # the same line inside the window still counts
    _, d = diagnose_live(None, dmesg_text=RECENT, window_s=300.0, now_s=5100.0)
    assert d.cause == "exhaustion"


@pytest.mark.skipif(not CONNTRACK.exists(), reason="no conntrack on this kernel")
def test_host_reading_skips_other_namespaces_lines() -> None:
    r = read_live(None, dmesg_text=OLD_RUN[0], window_s=None)
    assert r.table_full == []
