"""What dockerd left in the host's iptables, and the commands that take it back out.

dockerd (and the kind network it serves) may add ``DOCKER*`` chains, jumps to them from the
built-in chains, bridge rules (``docker0``, ``br-<id>``), and set ``FORWARD``'s policy to DROP.
:func:`undo_commands` compares an ``iptables-save`` taken before dockerd started with one taken
after it stopped and returns the ``iptables`` argv lists that undo exactly those changes:
rules first, then the chains (flushed, then deleted), then the built-in policies. A rule that
is not docker's is left alone and named in :func:`foreign_changes`, never deleted. Pure: no
subprocess here.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

BUILTIN_CHAINS = frozenset(
    {"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"},
)
DOCKER_CHAIN = re.compile(r"^DOCKER")
DOCKER_IFACE = re.compile(r"(?:^|\s)-[io] (?:docker\d+|br-[0-9a-f]{12})(?:\s|$)")


@dataclass
class Table:
    policies: dict[str, str] = field(default_factory=dict)  # built-in chain -> policy
    chains: list[str] = field(default_factory=list)  # user chains, in file order
    rules: list[str] = field(default_factory=list)  # "-A CHAIN ..." lines, in file order


def parse(save: str) -> dict[str, Table]:
    """``iptables-save`` text -> tables by name (counters ignored)."""
    tables: dict[str, Table] = {}
    cur: Table | None = None
    for raw in save.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or line == "COMMIT":
            continue
        if line.startswith("*"):
            cur = tables.setdefault(line[1:], Table())
            continue
        if cur is None:
            continue
        if line.startswith(":"):
            name, policy = line[1:].split()[:2]
            if policy == "-":
                cur.chains.append(name)
            else:
                cur.policies[name] = policy
        elif line.startswith("-A "):
            cur.rules.append(line)
    return tables


def _is_docker_rule(rule: str) -> bool:
    parts = rule.split()
    chain = parts[1]
    jump = parts[parts.index("-j") + 1] if "-j" in parts else ""
    return bool(DOCKER_CHAIN.match(chain) or DOCKER_CHAIN.match(jump) or DOCKER_IFACE.search(rule))


def _new_rules(before: Table, after: Table) -> list[str]:
    seen = set(before.rules)
    return [r for r in after.rules if r not in seen]


def undo_commands(before: str, after: str) -> list[list[str]]:
    """``iptables`` argv lists that take docker's additions out of ``after``."""
    old, new = parse(before), parse(after)
    cmds: list[list[str]] = []
    for name, tab in new.items():
        prev = old.get(name, Table())
        added_chains = [c for c in tab.chains if c not in prev.chains and DOCKER_CHAIN.match(c)]
        for rule in reversed(_new_rules(prev, tab)):
            chain = rule.split()[1]
            if chain in added_chains or not _is_docker_rule(rule):
                continue  # goes with its chain below / not docker's: foreign_changes names it
            cmds.append(["iptables", "-t", name, "-D", *shlex.split(rule)[1:]])
        for chain in added_chains:
            cmds.append(["iptables", "-t", name, "-F", chain])
        for chain in added_chains:
            cmds.append(["iptables", "-t", name, "-X", chain])
        # a table that did not exist before had every built-in chain at ACCEPT
        policies = prev.policies if name in old else dict.fromkeys(tab.policies, "ACCEPT")
        for chain, policy in policies.items():
            if tab.policies.get(chain, policy) != policy:
                cmds.append(["iptables", "-t", name, "-P", chain, policy])
    return cmds


def new_empty_tables(before: str, after: str) -> list[str]:
    """Tables that did not exist before and now hold nothing but ACCEPT policies: listing or
    changing a chain with iptables-nft creates its table, and dropping it restores the host
    exactly (``nft delete table ip NAME``)."""
    old, new = parse(before), parse(after)
    return [
        name
        for name, tab in new.items()
        if name not in old
        and not tab.rules
        and not tab.chains
        and all(p == "ACCEPT" for p in tab.policies.values())
    ]


def foreign_changes(before: str, after: str) -> list[str]:
    """Changes between the two that are not docker's (left alone, reported)."""
    old, new = parse(before), parse(after)
    out: list[str] = []
    for name, tab in new.items():
        prev = old.get(name, Table())
        for rule in _new_rules(prev, tab):
            if not _is_docker_rule(rule):
                out.append(f"{name}: {rule}")
        for chain in tab.chains:
            if chain not in prev.chains and not DOCKER_CHAIN.match(chain):
                out.append(f"{name}: new chain {chain}")
    return out


def builtin_policies(save: str) -> dict[str, dict[str, str]]:
    """Policies of the built-in chains, by table (what the journal keeps for ``restore``)."""
    return {name: dict(t.policies) for name, t in parse(save).items()}
