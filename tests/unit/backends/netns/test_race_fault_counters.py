"""The netns backend reads the race-window table's named counters as kind does: ``nft list
table`` in each node's namespace, parsed and summed by :mod:`harness.dataplane.faults`."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import pytest

from cthcommon.errors import CommandFailed
from harness.backends.netns import levers as levers_mod
from harness.backends.netns.levers import Levers
from harness.dataplane.faults import TABLE
from tests.nft_listings import fault_listing


def test_summed_over_the_nodes_that_have_the_table(monkeypatch: pytest.MonkeyPatch) -> None:
    tables = {"ns-a": fault_listing(5, 9, 1), "ns-c": fault_listing(7, 10, 0)}  # ns-b: not injected
    seen: list[tuple[list[str], str | None]] = []

    def run(argv: Sequence[str], *, netns: str | None = None, **_kw: Any) -> Any:
        seen.append((list(argv), netns))
        if netns not in tables:
            raise CommandFailed(list(argv), 1, "Error: No such file or directory")
        return subprocess.CompletedProcess(list(argv), 0, tables[netns], "")

    monkeypatch.setattr(levers_mod, "run", run)
    nodes = [SimpleNamespace(ns=ns) for ns in ("ns-a", "ns-b", "ns-c")]
    topo = SimpleNamespace(plan=SimpleNamespace(nodes=nodes), coredns=None)
    lv = Levers(topo)  # type: ignore[arg-type]
    assert lv.race_fault_counters() == {"hits": 12, "open": 19, "answered": 1}
    assert lv.race_fault_hits() == 12
    argv = ["nft", "list", "table", "inet", TABLE]
    assert seen[:3] == [(argv, "ns-a"), (argv, "ns-b"), (argv, "ns-c")]

    tables.clear()  # no node has the table: nothing, not zeros
    assert lv.race_fault_counters() == {}
    assert lv.race_fault_hits() == 0
