"""Single-layer container images written as ``docker save`` archives, without a registry.

No machine here can pull an image, so every image a kind node runs (pause, etcd, the
Kubernetes components, coredns, the loadgen) is made from files on disk: one layer holding the
given files, an image config with the entrypoint, and the ``manifest.json`` that both
``docker load`` and ``ctr images import`` read. The archive is deterministic (sorted entries,
fixed mtimes and owners), so the same inputs give the same image ID and the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

EPOCH = 0  # fixed mtime: the image ID depends on the contents only


@dataclass(frozen=True)
class ImageSpec:
    """One image: its tags, its files (``/path/in/image`` -> file on disk) and its config."""

    tags: tuple[str, ...]
    files: Mapping[str, Path]
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    user: str = ""
    workdir: str = ""
    base_layer: Path | None = None  # a rootfs tarball laid down before ``files``
    modes: Mapping[str, int] = field(default_factory=dict)  # default 0o755 for files


def _add_dirs(tar: tarfile.TarFile, path: PurePosixPath, seen: set[str]) -> None:
    for parent in reversed(path.parents):
        name = str(parent).lstrip("/")
        if not name or name in seen:
            continue
        seen.add(name)
        info = tarfile.TarInfo(name)
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
        info.mtime = EPOCH
        tar.addfile(info)


def layer_bytes(spec: ImageSpec) -> bytes:
    """The image's one layer (an uncompressed tar)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        seen: set[str] = set()
        if spec.base_layer is not None:
            with tarfile.open(spec.base_layer) as base:
                for member in base:
                    name = member.name.lstrip("./").rstrip("/")
                    if not name:
                        continue
                    member.name = name
                    seen.add(name)
                    tar.addfile(member, base.extractfile(member) if member.isreg() else None)
        for dest in sorted(spec.files):
            path = PurePosixPath(dest)
            _add_dirs(tar, path, seen)
            src = spec.files[dest]
            data = src.read_bytes()
            info = tarfile.TarInfo(str(path).lstrip("/"))
            info.size = len(data)
            info.mode = spec.modes.get(dest, 0o755)
            info.mtime = EPOCH
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def config_json(spec: ImageSpec, diff_id: str) -> bytes:
    cfg: dict[str, object] = {"Env": list(spec.env)}
    if spec.entrypoint:
        cfg["Entrypoint"] = list(spec.entrypoint)
    if spec.cmd:
        cfg["Cmd"] = list(spec.cmd)
    if spec.user:
        cfg["User"] = spec.user
    if spec.workdir:
        cfg["WorkingDir"] = spec.workdir
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "conntrack-harness"}],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def write_archive(spec: ImageSpec, out: Path) -> str:
    """Write ``spec`` as a ``docker save`` archive at ``out``; returns the image ID."""
    layer = layer_bytes(spec)
    layer_hex = hashlib.sha256(layer).hexdigest()
    config = config_json(spec, f"sha256:{layer_hex}")
    config_hex = hashlib.sha256(config).hexdigest()
    manifest = [
        {
            "Config": f"{config_hex}.json",
            "RepoTags": list(spec.tags),
            "Layers": [f"{layer_hex}/layer.tar"],
        }
    ]
    entries: Sequence[tuple[str, bytes]] = (
        (f"{config_hex}.json", config),
        (f"{layer_hex}/layer.tar", layer),
        ("manifest.json", json.dumps(manifest, separators=(",", ":")).encode()),
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dir_info = tarfile.TarInfo(layer_hex)
        dir_info.type = tarfile.DIRTYPE
        dir_info.mode = 0o755
        dir_info.mtime = EPOCH
        tar.addfile(dir_info)
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = EPOCH
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(out)
    return f"sha256:{config_hex}"
