"""Live diagnose looks only at its window and its own namespace; advice skips what is done;
"table full" lines are presence, not severity (issue 13 §2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.diagnose.live import diagnose_live, read_live
from harness.diagnose.procfs import dmesg_seconds, table_full_lines
from harness.judge.diagnosis import Signals, classify, diagnose_phase
from tests.sample_results import PhaseModel, build_phase

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


def test_table_full_is_presence_not_a_count() -> None:
    few = classify(Signals(conntrack_max=1000, peak_count=1000, drop=5, table_full_lines=1))
    many = classify(Signals(conntrack_max=1000, peak_count=1000, drop=5, table_full_lines=400))
    assert few.cause == many.cause == "exhaustion"
    assert few.confidence == many.confidence
    assert few.evidence == many.evidence  # the number of lines is not shown as a measure
    assert not any("table_full_lines=" in e for e in many.evidence)
    assert any("rate-limits" in e for e in many.evidence)


def test_no_time_wait_advice_to_a_phase_that_has_30() -> None:
    p = build_phase(
        PhaseModel(
            "sysctls-too-small",
            remediations=("conntrack-sysctls: nf_conntrack_max=2048, tcp_timeout_time_wait=30",),
        )
    )
    d = diagnose_phase(p)
    assert d.cause == "exhaustion"
    assert "shorten nf_conntrack_tcp_timeout_time_wait" not in d.remediation
    assert "already 30 s" in d.remediation
    base = diagnose_phase(build_phase(PhaseModel("baseline")))
    assert "shorten nf_conntrack_tcp_timeout_time_wait" in base.remediation


def test_live_time_wait_read_from_the_sysctl() -> None:
    s = Signals(conntrack_max=100, peak_count=100, drop=3, time_wait_s=20)
    assert "already 20 s" in classify(s).remediation
    s = Signals(conntrack_max=100, peak_count=100, drop=3, time_wait_s=120)
    assert "shorten nf_conntrack_tcp_timeout_time_wait" in classify(s).remediation


def test_musl_waits_shown_apart_from_timeouts() -> None:
    p = build_phase(PhaseModel("musl", conntrack_max=65536, new_conns_per_s=5))
    p["dns"]["timeouts"] = 3
    p["dns"]["waited"] = 10
    d = diagnose_phase(p)
    assert any("3/" in e and "7 more waited for a resend" in e for e in d.evidence)
