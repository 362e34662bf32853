"""The kind CLI and CNI plugins: pinned in versions.toml, found in the cache only when complete."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.upstream import ComponentMissing, kindparts


def test_pinned_versions() -> None:
    v = kindparts.pinned()
    assert v["kind"].startswith("v0.")
    assert v["cni-plugins"].startswith("v1.")


def test_locate_needs_every_binary_and_the_marker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNTRACK_HARNESS_CACHE", str(tmp_path))
    d = tmp_path / "upstream" / f"cni-plugins-{kindparts.pinned()['cni-plugins']}"
    d.mkdir(parents=True)
    for name in ("ptp", "host-local", "loopback"):
        (d / name).write_bytes(b"x")
    (d / ".complete").write_text("{}")
    with pytest.raises(ComponentMissing, match="cni-plugins"):
        kindparts.locate("cni-plugins")
    (d / "portmap").write_bytes(b"x")
    assert kindparts.locate("cni-plugins") == d
    (d / ".complete").unlink()
    with pytest.raises(ComponentMissing):
        kindparts.locate("cni-plugins")
