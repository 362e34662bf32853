"""``--source auto``: the official download first, the Go build when there is none; and once
the download host did not answer at all, the rest of the run builds from source without
asking it again (a host that drops packets would cost a timeout per component). Pure: the
download and the Go build are stand-ins; the cache is a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.upstream import build as builder
from harness.upstream import cache, default_version, releases
from harness.upstream.errors import DownloadUnavailable, DownloadUnreachable

pytestmark = pytest.mark.unit

MAKE = builder.make  # the real one (tests/unit/conftest.py refuses it to every other test)


def _tasks() -> list[builder.Task]:
    rel = releases()[default_version()]
    return [
        builder.Task("etcd", rel.etcd, ("etcd",), rel),
        builder.Task("coredns", rel.coredns, ("coredns",), rel),
        builder.Task("kubernetes", rel.kubernetes, ("kube-proxy",), rel),
    ]


def _made(task: builder.Task, out: Path, source: str) -> dict[str, cache.Installed]:
    made = {}
    for b in task.binaries:
        (out / b).write_bytes(b"#!/bin/true\n")
        made[b] = cache.Installed(out / b, source, f"stand-in {source}", 0.0)
    return made


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, list[str]]:
    monkeypatch.setenv("CONNTRACK_HARNESS_CACHE", str(tmp_path / "cache"))
    seen: dict[str, list[str]] = {"download": [], "go": []}

    def go(task: builder.Task, out: Path, gocache: object, say: object) -> object:
        seen["go"].append(task.component)
        return _made(task, out, "go")

    monkeypatch.setattr(builder, "make", MAKE)
    monkeypatch.setattr(builder, "_go", go)
    return seen


def _download_raising(
    monkeypatch: pytest.MonkeyPatch, seen: dict[str, list[str]], error: DownloadUnavailable
) -> None:
    def download(task: builder.Task, out: Path, mirror: object, say: object) -> object:
        seen["download"].append(task.component)
        (out / "partial").write_bytes(b"")  # what a failed download leaves: removed
        raise error

    monkeypatch.setattr(builder, "_download", download)


def test_an_unreachable_download_host_is_asked_once_per_run(
    monkeypatch: pytest.MonkeyPatch, calls: dict[str, list[str]]
) -> None:
    _download_raising(monkeypatch, calls, DownloadUnreachable("https://x/SHA256SUMS: timed out"))
    lines: list[str] = []
    out = builder.run(_tasks(), "auto", say=lines.append)
    assert [o.status for o in out] == ["installed"] * 3
    assert calls["download"] == ["etcd"]  # asked once, by the first task
    assert calls["go"] == ["etcd", "coredns", "kubernetes"]
    said = "\n".join(lines)
    assert "building this and the rest from source" in said
    assert said.count("no official download") == 1
    # a new run asks again: the host may answer by then
    builder.run(_tasks()[:1], "auto", say=lines.append, rebuild=True)
    assert calls["download"] == ["etcd", "etcd"]


def test_a_missing_file_does_not_stop_the_next_download(
    monkeypatch: pytest.MonkeyPatch, calls: dict[str, list[str]]
) -> None:
    # the host answered (HTTP 404): the next component may well have a release file
    _download_raising(monkeypatch, calls, DownloadUnavailable("https://x/y: HTTP 404 Not Found"))
    lines: list[str] = []
    out = builder.run(_tasks(), "auto", say=lines.append)
    assert [o.status for o in out] == ["installed"] * 3
    assert calls["download"] == ["etcd", "coredns", "kubernetes"]
    assert calls["go"] == ["etcd", "coredns", "kubernetes"]
    assert "\n".join(lines).count("no official download") == 3


def test_go_and_download_sources_are_not_changed(
    monkeypatch: pytest.MonkeyPatch, calls: dict[str, list[str]]
) -> None:
    _download_raising(monkeypatch, calls, DownloadUnreachable("https://x: no route"))
    out = builder.run(_tasks(), "download", say=lambda _: None)
    assert [o.status for o in out] == ["failed"] * 3  # each told, none built from source
    assert calls["download"] == ["etcd", "coredns", "kubernetes"]
    assert calls["go"] == []


def test_an_unanswered_lookup_is_unreachable_and_an_http_status_is_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import urllib.error
    import urllib.request

    from harness.upstream import download

    def no_name(url: str, timeout: float) -> object:
        raise urllib.error.URLError(OSError(-2, "Name or service not known"))

    monkeypatch.setattr(urllib.request, "urlopen", no_name)
    with pytest.raises(DownloadUnreachable):
        download.fetch_text("https://example.invalid/SHA256SUMS")

    def not_found(url: str, timeout: float) -> object:
        raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)  # type: ignore[arg-type]

    monkeypatch.setattr(urllib.request, "urlopen", not_found)
    with pytest.raises(DownloadUnavailable) as e:
        download.fetch_text("https://example.invalid/SHA256SUMS")
    assert not isinstance(e.value, DownloadUnreachable)
