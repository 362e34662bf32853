"""Injected faults (always labelled ``injected``): the A/AAAA race window, as an nft rule (pure).

The rule runs in the node's forward hook and drops, with probability P, a UDP/53 packet that
is the second original-direction packet of a conntrack entry that has seen no reply yet. That
is exactly the packet the real insert race loses: the AAAA of a same-socket A/AAAA pair. It
cannot match single-request (the reply came first), single-request-reopen or Go (a new
socket, so a new entry), or NOTRACK'ed traffic (no entry at all). It needs
``nf_conntrack_acct=1`` in the node's namespace for the packet counters.
"""

from __future__ import annotations

from harness.errors import BadInput

TABLE = "cth_race_fault"


def race_window_ruleset(probability: float) -> str:
    if not 0 < probability <= 1:
        raise BadInput(
            "probability must be in (0, 1]", field="faults.probability", value=probability
        )
    pct = round(probability * 100)
    # nft rejects "numgen random mod 100 < 100": at P=100 % leave the numgen match out
    gate = "" if pct >= 100 else f"numgen random mod 100 < {max(pct, 1)} "
    return (
        f"table inet {TABLE} {{\n"
        "    counter hits {}\n"
        "    chain race_window {\n"
        "        type filter hook forward priority filter; policy accept;\n"
        "        meta l4proto udp th dport 53 ct original packets 2 ct reply packets 0 "
        f'{gate}counter name "hits" drop\n'
        "    }\n"
        "}\n"
    )
