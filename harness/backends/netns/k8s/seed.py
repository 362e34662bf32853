"""A kept empty control plane: the PKI and etcd's data of a cluster that started once and holds
nothing of a run, in the cache outside the checkout.

A run's control plane starts from a copy of it: kube-apiserver then finds its bootstrap RBAC
roles, priority classes, system namespaces and their service accounts already stored and only
checks them, instead of writing each (its ``rbac/bootstrap-roles`` hook alone took 1.3 s of a
2.8 s start). What must be new is new: the namespaces, the processes, etcd's data directory
(a copy per run, in the run's own directory) and every object a run creates.

An entry is keyed by everything that shapes it (:func:`key_inputs`): this format, the
project's version, the sha256 of the etcd, kube-apiserver and kube-controller-manager
binaries, the control plane's addresses, ranges, domain and controllers and the components'
flags; a change of any makes another entry. An entry older than :data:`MAX_AGE_S` is made
again (its certificates are valid for :data:`~.pki.DAYS` days).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness import __version__
from harness.upstream import cache_dir

FORMAT = 1
MAX_AGE_S = 20 * 3600.0  # the PKI's certificates are valid 2 days: never use one near its end
STAMP = "seed.json"
PARTIAL_MAX_AGE_S = 600.0  # a ``.tmp-`` entry older than this was left by a killed run


def seeds_dir() -> Path:
    return cache_dir().parent / "netns-control-plane"


def key_inputs(binaries: Mapping[str, str], config: Mapping[str, Any]) -> dict[str, Any]:
    """What an entry depends on (pure): ``binaries`` name -> sha256, ``config`` the control
    plane's settings and the components' flags (without a run's paths and names)."""
    return {
        "format": FORMAT,
        "project": __version__,
        "binaries": dict(sorted(binaries.items())),
        "config": dict(config),
    }


def key(inputs: Mapping[str, Any]) -> str:
    """The entry's name: a digest of its inputs (pure)."""
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def fresh(made_at: float, now: float, max_age_s: float = MAX_AGE_S) -> bool:
    """An entry made at ``made_at`` may still be used at ``now`` (pure)."""
    return 0.0 <= now - made_at < max_age_s


def lookup(name: str, now: float | None = None) -> Path | None:
    """The complete, fresh entry ``name``, or None."""
    d = seeds_dir() / name
    try:
        stamp = json.loads((d / STAMP).read_text())
        made_at = float(stamp["made_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return d if fresh(made_at, time.time() if now is None else now) else None


def store(name: str, inputs: Mapping[str, Any], pki_dir: Path, etcd_dir: Path) -> Path:
    """Keep a copy of a stopped control plane's PKI and etcd data as entry ``name`` (made
    beside it, then renamed into place: a reader sees all of it or nothing)."""
    root = seeds_dir()
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    _drop_partials(root)
    tmp = root / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(mode=0o700)
    try:
        shutil.copytree(pki_dir, tmp / "pki")
        shutil.copytree(etcd_dir, tmp / "etcd")
        stamp = {"made_at": time.time(), "inputs": dict(inputs)}
        (tmp / STAMP).write_text(json.dumps(stamp, indent=2, sort_keys=True, default=str))
        final = root / name
        shutil.rmtree(final, ignore_errors=True)  # a stale entry of the same inputs
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def restore(entry: Path, pki_dir: Path, etcd_dir: Path) -> None:
    """A run's own copy of the entry's PKI (into the existing ``pki_dir``) and etcd data."""
    for f in (entry / "pki").iterdir():
        if f.suffix != ".kubeconfig":  # they name the entry's paths: the caller writes them
            shutil.copy2(f, pki_dir / f.name)
    shutil.copytree(entry / "etcd", etcd_dir)


def _drop_partials(root: Path) -> None:
    now = time.time()
    for d in root.glob(".tmp-*"):
        with contextlib.suppress(OSError):
            if now - d.stat().st_mtime > PARTIAL_MAX_AGE_S:
                shutil.rmtree(d, ignore_errors=True)
