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

from harness.upstream.cache import sha256_of

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
    base_layers: tuple[Path, ...] = ()  # uncompressed tarballs laid down before ``files``
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


def config_json(spec: ImageSpec, diff_ids: Sequence[str]) -> bytes:
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
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [
            {"created": "1970-01-01T00:00:00Z", "created_by": "conntrack-harness"} for _ in diff_ids
        ],
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def write_archive(spec: ImageSpec, out: Path) -> str:
    """Write ``spec`` as a ``docker save`` archive at ``out``; returns the image ID.

    Base layers go in as they are (same tarball, same digest: a store keeps it once)."""
    layer = layer_bytes(spec)
    base_hex = [sha256_of(p) for p in spec.base_layers]
    layer_hex = hashlib.sha256(layer).hexdigest()
    all_hex = [*base_hex, layer_hex]
    config = config_json(spec, [f"sha256:{h}" for h in all_hex])
    config_hex = hashlib.sha256(config).hexdigest()
    manifest = [
        {
            "Config": f"{config_hex}.json",
            "RepoTags": list(spec.tags),
            "Layers": [f"{h}/layer.tar" for h in all_hex],
        }
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with tarfile.open(tmp, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for h in dict.fromkeys(all_hex):
            dir_info = tarfile.TarInfo(h)
            dir_info.type = tarfile.DIRTYPE
            dir_info.mode = 0o755
            dir_info.mtime = EPOCH
            tar.addfile(dir_info)
        for h, path in zip(base_hex, spec.base_layers, strict=True):
            info = tar.gettarinfo(str(path), arcname=f"{h}/layer.tar")
            info.mtime, info.uid, info.gid, info.uname, info.gname = EPOCH, 0, 0, "", ""
            with path.open("rb") as f:
                tar.addfile(info, f)
        entries = (
            (f"{config_hex}.json", config),
            (f"{layer_hex}/layer.tar", layer),
            ("manifest.json", json.dumps(manifest, separators=(",", ":")).encode()),
        )
        for name, data in entries:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = EPOCH
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(out)
    return f"sha256:{config_hex}"
