"""``nft list table`` text of the race-window fault table, as nft 1.0.6 prints it: what both
backends read the fault's named counters from (:mod:`harness.dataplane.faults`)."""

from __future__ import annotations

from harness.dataplane.faults import TABLE


def fault_listing(hits: int, open_: int, answered: int, table: str = TABLE) -> str:
    """``nft list table inet <table>`` with :func:`~harness.dataplane.faults.race_window_ruleset`
    (50 %) loaded: the named counters first, a blank line apart, then the chain, its rules
    decompiled (``meta l4proto udp th dport 53`` reads back as ``udp dport 53``) and the
    drop's inline counter, whose packets are the same as ``hits``."""
    second = "udp dport 53 ct original packets 2"
    return (
        f"table inet {table} {{\n"
        f"\tcounter hits {{\n\t\tpackets {hits} bytes {hits * 80}\n\t}}\n"
        "\n"
        f"\tcounter open {{\n\t\tpackets {open_} bytes {open_ * 80}\n\t}}\n"
        "\n"
        f"\tcounter answered {{\n\t\tpackets {answered} bytes {answered * 80}\n\t}}\n"
        "\n"
        "\tchain race_window {\n"
        "\t\ttype filter hook forward priority filter; policy accept;\n"
        f'\t\t{second} ct reply packets > 0 counter name "answered"\n'
        f'\t\t{second} ct reply packets 0 counter name "open"\n'
        f"\t\t{second} ct reply packets 0 numgen random mod 100 < 50 "
        f'counter name "hits" counter packets {hits} bytes {hits * 80} drop\n'
        "\t}\n"
        "}\n"
    )
