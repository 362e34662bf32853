"""`upstream build` records its own cold build, and the bench's figure reads that record.
The builder runs for real (plan, cache lock, staging, install, stamps) in a temporary cache;
only making each binary is replaced by writing a small file."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import pytest

from bench import upstream as bench_upstream
from cthcommon.errors import HarnessError
from harness.upstream import build as builder
from harness.upstream import cache, coldbuild, release
from harness.upstream.cli import cmd_build


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CONNTRACK_HARNESS_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "upstream"


def _fake_make(fail: str = "") -> Any:
    def make(task: builder.Task, out: Path, source: str, **_: Any) -> dict[str, cache.Installed]:
        if task.component == fail:
            raise HarnessError(f"{fail} did not build")
        made = {}
        for b in task.binaries:
            t0 = time.monotonic()
            (out / b).write_bytes(f"{task.component} {task.version} {b}".encode())
            made[b] = cache.Installed(out / b, "go", "test", time.monotonic() - t0)
        time.sleep(0.05)  # something to measure
        return made

    return make


def _args(**kw: Any) -> argparse.Namespace:
    base: dict[str, Any] = {
        "kubernetes": None,
        "component": None,
        "source": "go",
        "mirror": None,
        "rebuild": False,
        "cold": False,
    }
    return argparse.Namespace(**{**base, **kw})


def _needed() -> set[tuple[str, str]]:
    needed, _ = bench_upstream._needed(release())
    return needed


def test_a_build_from_an_empty_cache_records_itself_and_the_bench_reads_it(
    monkeypatch: pytest.MonkeyPatch, tmp_cache: Path
) -> None:
    monkeypatch.setattr(builder, "make", _fake_make())
    assert bench_upstream.measure()[0] is None
    assert cmd_build(_args()) == 0
    records = coldbuild.read_all()
    assert len(records) == 1
    rec = records[0]
    assert rec["trigger"] == "empty cache"
    assert rec["kubernetes"] == [release().kubernetes]
    assert coldbuild.covers(rec, _needed())
    part_s = sum(p["seconds"] for p in rec["parts"])
    assert part_s > 0
    assert rec["wall_s"] >= round(part_s, 1) - 0.1 * len(rec["parts"])
    assert rec["started"] <= rec["finished"]
    assert rec["go_build_cache"] in ("absent", "empty", "warm", "unknown")
    value, detail = bench_upstream.measure()
    assert value == rec["wall_s"]
    assert detail["built_at"] == rec["finished"]
    assert detail["trigger"] == "empty cache"
    # a second build finds everything and records nothing more
    assert cmd_build(_args()) == 0
    assert len(coldbuild.read_all()) == 1
    assert json.loads(coldbuild.record_path().read_text().splitlines()[0]) == rec


def test_a_build_onto_a_cache_that_had_a_part_is_not_cold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(builder, "make", _fake_make())
    assert cmd_build(_args(component=["etcd"])) == 0
    assert [r["parts"][0]["component"] for r in coldbuild.read_all()] == ["etcd"]
    assert cmd_build(_args()) == 0  # the rest, onto a cache that had etcd
    assert len(coldbuild.read_all()) == 1
    assert bench_upstream.from_record(release(), _needed()) is None
    # without a record that covers the release, the bench adds up the first installs
    value, detail = bench_upstream.measure()
    assert value is not None
    assert "first install" in detail["how"]
    assert {p["component"] for p in detail["parts"]} == {c for c, _ in _needed()}


def test_a_failed_part_leaves_no_record(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builder, "make", _fake_make(fail="coredns"))
    with pytest.raises(HarnessError):
        cmd_build(_args())
    assert coldbuild.read_all() == []


def test_cold_rebuild_records_with_its_trigger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builder, "make", _fake_make())
    assert cmd_build(_args()) == 0
    assert cmd_build(_args(cold=True)) == 0
    first, second = coldbuild.read_all()
    assert (first["trigger"], second["trigger"]) == ("empty cache", "--cold")
    assert second["go_build_cache"].startswith("empty")
    assert bench_upstream.measure()[1]["trigger"] == "--cold"  # the latest


def test_dir_state(tmp_path: Path) -> None:
    assert coldbuild.dir_state(str(tmp_path / "nope")) == "absent"
    (tmp_path / "d" / "00").mkdir(parents=True)
    assert coldbuild.dir_state(str(tmp_path / "d")) == "empty"
    (tmp_path / "d" / "00" / "x").write_text("x")
    assert coldbuild.dir_state(str(tmp_path / "d")) == "warm"


def test_a_torn_line_is_skipped(tmp_cache: Path) -> None:
    tmp_cache.mkdir(parents=True)
    coldbuild.record_path().write_text('{"trigger": "empty cache"}\n{"tri\n[1]\n')
    assert coldbuild.read_all() == [{"trigger": "empty cache"}]
