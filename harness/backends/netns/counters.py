"""Read the nft counters the netns backend installs (node DNS in/out, server rx/tx)."""

from __future__ import annotations

import json

from cthcommon.netns import run


def read_counters(ns: str, table: str) -> dict[str, int]:
    out = run(["nft", "-j", "list", "counters", "table", "inet", table], netns=ns).stdout
    result: dict[str, int] = {}
    for item in json.loads(out).get("nftables", []):
        c = item.get("counter")
        if c:
            result[c["name"]] = int(c["packets"])
    return result


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in after}
