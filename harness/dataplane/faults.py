"""Injected faults (always labelled ``injected``): the A/AAAA race window, as an nft table (pure).

The rule runs in the node's forward hook and drops, with probability P, a UDP/53 packet that
is the second original-direction packet of a conntrack entry that has seen no reply yet. That
is exactly the packet the real insert race loses: the AAAA of a same-socket A/AAAA pair. It
cannot match single-request (the reply came first), single-request-reopen or Go (a new
socket, so a new entry), or NOTRACK'ed traffic (no entry at all). It needs
``nf_conntrack_acct=1`` in the node's namespace for the packet counters.

Every backend loads the same table text. Its drop is counted twice in the same rule: by the
named counter ``hits`` and by an inline ``counter`` (``counter packets N bytes M`` in the
listing), so the drops can be read either way.

Every backend reads the named counters the same way: it runs :func:`listing_argv` (``nft list
table``) in each node's namespace (netns) or through the node's container (kind), parses each
node's listing with :func:`named_counters` ({} where the table is not loaded), adds the nodes
up with :func:`sum_node_counters`, and builds the phase's ``fault`` from the sums' change
(:func:`harness.results.fault.fault_result`).

Two more named counters only observe (no verdict, no inline counter, so the listing's one
inline counter stays the drops): ``open``, second original packets that found the entry still
unanswered (the window the drop draws from), and ``answered``, second original packets that
came after the first reply (the window had closed: the pair could not race, whatever P). With
a fast server the first answer can beat the second packet to the node, so the share of pairs
the fault can hit is measured, not assumed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from cthcommon.errors import BadInput

TABLE = "cth_race_fault"
HITS = "hits"
OPEN = "open"
ANSWERED = "answered"


def race_percent(probability: float) -> int:
    """The one race-window rule: nft draws ``numgen random mod 100``, so P is a whole percent,
    rounded, and never below 1 % (a probability that rounds to 0 % still drops, at 1 %)."""
    if not 0 < probability <= 1:
        raise BadInput(
            "probability must be in (0, 1]", field="faults.probability", value=probability
        )
    return min(100, max(1, round(probability * 100)))


def race_window_ruleset(percent: int, table: str = TABLE) -> str:
    """The nft table that injects the race window at ``percent`` % (see :func:`race_percent`)."""
    if not 1 <= percent <= 100:
        raise BadInput("percent must be in 1..100", field="faults.probability", value=percent)
    # nft rejects "numgen random mod 100 < 100": at P=100 % leave the numgen match out
    gate = "" if percent >= 100 else f"numgen random mod 100 < {percent} "
    second = "meta l4proto udp th dport 53 ct original packets 2"
    return (
        f"table inet {table} {{\n"
        f"    counter {HITS} {{}}\n"
        f"    counter {OPEN} {{}}\n"
        f"    counter {ANSWERED} {{}}\n"
        "    chain race_window {\n"
        "        type filter hook forward priority filter; policy accept;\n"
        f'        {second} ct reply packets > 0 counter name "{ANSWERED}"\n'
        f'        {second} ct reply packets 0 counter name "{OPEN}"\n'
        f"        {second} ct reply packets 0 "
        f'{gate}counter name "{HITS}" counter drop\n'
        "    }\n"
        "}\n"
    )


_NAMED = re.compile(r"counter\s+([A-Za-z_][\w-]*)\s*\{\s*packets\s+(\d+)\s+bytes\s+\d+")


def listing_argv(table: str = TABLE) -> list[str]:
    """The one command that lists the fault table on a node, counters and all (run in the
    node's namespace, or through its container); it fails where the table is not loaded."""
    return ["nft", "list", "table", "inet", table]


def named_counters(listing: str) -> dict[str, int]:
    """The named counters' packets in the text :func:`listing_argv` prints (pure): ``{hits,
    open, answered}`` for the fault table, not the rules' inline counters; {} when it has
    none. A node whose listing failed (table not loaded) counts as {}."""
    return {m.group(1): int(m.group(2)) for m in _NAMED.finditer(listing)}


def sum_node_counters(per_node: Iterable[Mapping[str, int]]) -> dict[str, int]:
    """The named counters added up over the nodes (pure): a name counts on the nodes that
    have it; {} when no node has the table."""
    total: dict[str, int] = {}
    for counts in per_node:
        for name, n in counts.items():
            total[name] = total.get(name, 0) + n
    return total
