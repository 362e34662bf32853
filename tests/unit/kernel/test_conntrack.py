from __future__ import annotations

import pytest

from harness.kernel.conntrack import count_dns_entries, parse_stat, stat_delta, state_histogram
from harness.kernel.kmsg import table_full_lines

# as read on this machine's 6.18 kernel (2 CPUs)
STAT = """entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart
00001000  00000003 00000000 00000000 00000002 00000000 00000000 00000000 00000000 00000001 0000000a 00000001 00000000  00000000 00000000 00000000 00000000
00001000  00000002 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 000000f0 00000000 00000000  00000000 00000000 00000000 00000000
"""


def test_parse_stat_sums_cpus_but_not_entries() -> None:
    s = parse_stat(STAT)
    assert s["entries"] == 0x1000
    assert s["drop"] == 0x0A + 0xF0
    assert s["clash_resolve"] == 5
    assert s["insert_failed"] == 1
    assert s["invalid"] == 2


def test_parse_stat_follows_the_header_not_a_fixed_order() -> None:
    text = "drop entries clashres\n0000000a 00000005 00000001\n00000001 00000005 00000002\n"
    assert parse_stat(text) == {"drop": 11, "entries": 5, "clash_resolve": 3}


@pytest.mark.parametrize("text", ["", "entries drop\n0a\n", "entries drop\n01 zz\n"])
def test_parse_stat_refuses_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="nf_conntrack"):
        parse_stat(text)


def test_stat_delta_excludes_entries() -> None:
    before = parse_stat(STAT)
    after = dict(before, drop=before["drop"] + 7)
    d = stat_delta(before, after)
    assert d["drop"] == 7
    assert "entries" not in d


LISTING = """tcp      6 117 TIME_WAIT src=10.244.1.2 dst=10.96.0.20 sport=1 dport=80 src=10.244.2.4 dst=172.18.0.11 sport=80 dport=2 [ASSURED] mark=0 use=1
tcp      6 117 TIME_WAIT src=10.244.1.2 dst=10.96.0.20 sport=3 dport=80 src=10.244.2.4 dst=172.18.0.11 sport=80 dport=4 [ASSURED] mark=0 use=1
tcp      6 9 CLOSE src=10.244.1.2 dst=10.96.0.20 sport=5 dport=80 src=10.244.2.4 dst=172.18.0.11 sport=80 dport=6 [ASSURED] mark=0 use=1
udp      17 29 src=10.244.1.2 dst=10.96.0.10 sport=58262 dport=53 [UNREPLIED] src=10.244.2.3 dst=172.18.0.11 sport=53 dport=21586 mark=0 use=1
udp      17 25 src=10.244.1.2 dst=10.96.0.10 sport=58263 dport=53 src=10.244.2.3 dst=172.18.0.11 sport=53 dport=21587 mark=0 use=1
conntrack v1.4.7 (conntrack-tools): 5 flow entries have been shown.
"""


def test_state_histogram_counts_tcp_states_and_udp_kinds() -> None:
    assert state_histogram(LISTING) == {"TIME_WAIT": 2, "CLOSE": 1, "UDP_UNREPLIED": 1, "UDP": 1}
    assert count_dns_entries(LISTING) == 2
    assert count_dns_entries(LISTING, "10.244.") == 2
    assert count_dns_entries(LISTING, "172.18.") == 0


def test_table_full_lines_filtered_by_namespace_inode() -> None:
    lines = [
        "[  10.0] nf_conntrack: nf_conntrack: table full in netns 4026532001, dropping packet",
        "[  11.0] nf_conntrack: nf_conntrack: table full in netns 4026539999, dropping packet",
        "[  12.0] nf_conntrack: table full, dropping packet",
        "[  13.0] something else",
    ]
    assert table_full_lines(lines, {4026532001}) == [lines[0]]
    assert table_full_lines(lines, {0}) == [lines[2]]


def test_dns_entries_of_named_sources_only() -> None:
    listing = (
        "udp 17 29 src=10.244.1.2 dst=10.96.0.10 sport=4000 dport=53 src=10.244.2.2 "
        "dst=172.18.0.11 sport=53 dport=4000 mark=0 use=1\n"
        "tcp 6 431999 ESTABLISHED src=10.244.2.2 dst=203.0.113.53 sport=33124 dport=53 "
        "src=203.0.113.53 dst=10.244.2.2 sport=53 dport=33124 [ASSURED] mark=0 use=1\n"
        "udp 17 29 src=10.244.1.20 dst=10.96.0.10 sport=4001 dport=53 src=10.244.2.2 "
        "dst=172.18.0.11 sport=53 dport=4001 mark=0 use=1\n"
    )
    assert count_dns_entries(listing, "10.244.") == 3
    # a client pod's address, exactly: not another pod that shares its prefix, nor CoreDNS's
    # own upstream flow
    assert count_dns_entries(listing, ("10.244.1.2",)) == 1
    assert count_dns_entries(listing, ("10.244.1.2", "10.244.1.20")) == 2


@pytest.mark.parametrize(
    ("mem", "want"),
    [
        (24 << 30, 262144),  # this machine: 24 GiB, and /proc says 262144 for both
        (4 << 30, 65536),  # exactly 4 GiB is not above it
        (2 << 30, 65536),
        (512 << 20, 4096),  # RAM / 16 KiB / 8 bytes
        (8 << 20, 1024),  # the floor
    ],
)
def test_kernel_default_table_follows_nf_conntrack_init_start(mem: int, want: int) -> None:
    from harness.kernel.conntrack import kernel_default_table

    assert kernel_default_table(mem) == want
