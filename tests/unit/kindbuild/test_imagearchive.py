"""Image archives written without docker: the layout docker load / ctr import read."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

from harness.kindbuild import imagearchive as ia
from harness.kindbuild.dockerd import DockerdPaths


def _spec(tmp_path: Path, content: bytes = b"#!/bin/sh\n") -> ia.ImageSpec:
    binary = tmp_path / "tool"
    binary.write_bytes(content)
    return ia.ImageSpec(
        tags=("registry.k8s.io/tool:v1",),
        files={"/usr/local/bin/tool": binary},
        entrypoint=("/usr/local/bin/tool",),
        user="65535:65535",
    )


def test_archive_layout_and_ids(tmp_path: Path) -> None:
    out = tmp_path / "img.tar"
    image_id = ia.write_archive(_spec(tmp_path), out)
    with tarfile.open(out) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        (entry,) = manifest
        assert entry["RepoTags"] == ["registry.k8s.io/tool:v1"]
        config_bytes = tar.extractfile(entry["Config"]).read()  # type: ignore[union-attr]
        layer = tar.extractfile(entry["Layers"][0]).read()  # type: ignore[union-attr]
    assert image_id == "sha256:" + hashlib.sha256(config_bytes).hexdigest()
    config = json.loads(config_bytes)
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer).hexdigest()]
    assert config["config"]["Entrypoint"] == ["/usr/local/bin/tool"]
    assert config["config"]["User"] == "65535:65535"
    layer_path = tmp_path / "layer.tar"
    layer_path.write_bytes(layer)
    with tarfile.open(layer_path) as lt:
        names = lt.getnames()
        member = lt.getmember("usr/local/bin/tool")
        assert member.mode == 0o755
        assert lt.extractfile(member).read() == b"#!/bin/sh\n"  # type: ignore[union-attr]
    # parents come before the file, each once
    assert names[:3] == ["usr", "usr/local", "usr/local/bin"]


def test_same_inputs_same_image_other_inputs_other_image(tmp_path: Path) -> None:
    a = ia.write_archive(_spec(tmp_path), tmp_path / "a.tar")
    b = ia.write_archive(_spec(tmp_path), tmp_path / "b.tar")
    assert a == b
    assert (tmp_path / "a.tar").read_bytes() == (tmp_path / "b.tar").read_bytes()
    c = ia.write_archive(_spec(tmp_path, b"other"), tmp_path / "c.tar")
    assert c != a


def test_base_layer_goes_in_first_as_is(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text("ID=debian\n")
    base = tmp_path / "base.tar"
    with tarfile.open(base, "w") as tar:
        tar.add(root, arcname=".")
    spec = _spec(tmp_path)
    spec = ia.ImageSpec(spec.tags, spec.files, spec.entrypoint, base_layers=(base,))
    ia.write_archive(spec, tmp_path / "img.tar")
    with tarfile.open(tmp_path / "img.tar") as tar:
        (entry,) = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        first = tar.extractfile(entry["Layers"][0]).read()  # type: ignore[union-attr]
        config = json.loads(tar.extractfile(entry["Config"]).read())  # type: ignore[union-attr]
    assert first == base.read_bytes()
    assert len(entry["Layers"]) == 2
    assert config["rootfs"]["diff_ids"][0] == "sha256:" + hashlib.sha256(first).hexdigest()


def test_dockerd_keeps_to_its_own_directories() -> None:
    paths = DockerdPaths(Path("/c/docker"))
    argv = paths.argv()
    assert "--data-root=/c/docker/data" in argv
    assert "--exec-root=/c/docker/run" in argv
    assert "--host=unix:///c/docker/run/docker.sock" in argv
    # no NAT, no forwarding, no default bridge: nothing in the host's filter table
    for flag in ("--iptables=false", "--ip-forward=false", "--bridge=none"):
        assert flag in argv
    assert not any("/var/lib/docker" in a for a in argv)
