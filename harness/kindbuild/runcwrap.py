"""A runc wrapper that keeps a container's capabilities inside the caller's bounding set.

``docker run --privileged`` (which kind uses for every node) asks runc for every capability
Docker knows. Where the harness itself runs without one of them in its bounding set (this
sandbox drops ``CAP_SYS_RESOURCE``), runc fails with "unable to apply caps: operation not
permitted". The private dockerd therefore runs containers through this wrapper (its default
runtime): on ``create``/``run`` it drops from the bundle's ``config.json`` the capabilities
the wrapper's own process cannot grant, then execs the real runc. Nothing else changes.

:func:`filter_caps` is the pure part; :func:`script` is the wrapper's source.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# capability numbers (linux/capability.h)
CAPS = (  # noqa: SIM905
    "CAP_CHOWN CAP_DAC_OVERRIDE CAP_DAC_READ_SEARCH CAP_FOWNER CAP_FSETID CAP_KILL CAP_SETGID "
    "CAP_SETUID CAP_SETPCAP CAP_LINUX_IMMUTABLE CAP_NET_BIND_SERVICE CAP_NET_BROADCAST "
    "CAP_NET_ADMIN CAP_NET_RAW CAP_IPC_LOCK CAP_IPC_OWNER CAP_SYS_MODULE CAP_SYS_RAWIO "
    "CAP_SYS_CHROOT CAP_SYS_PTRACE CAP_SYS_PACCT CAP_SYS_ADMIN CAP_SYS_BOOT CAP_SYS_NICE "
    "CAP_SYS_RESOURCE CAP_SYS_TIME CAP_SYS_TTY_CONFIG CAP_MKNOD CAP_LEASE CAP_AUDIT_WRITE "
    "CAP_AUDIT_CONTROL CAP_SETFCAP CAP_MAC_OVERRIDE CAP_MAC_ADMIN CAP_SYSLOG CAP_WAKE_ALARM "
    "CAP_BLOCK_SUSPEND CAP_AUDIT_READ CAP_PERFMON CAP_BPF CAP_CHECKPOINT_RESTORE"
).split()
CAP_BIT = {name: i for i, name in enumerate(CAPS)}


def bounding_set(status: str) -> int:
    """``CapBnd`` from a ``/proc/<pid>/status`` text."""
    for line in status.splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    raise ValueError("no CapBnd line")


def filter_caps(config: Mapping[str, Any], bounding: int) -> tuple[dict[str, Any], list[str]]:
    """``config`` with every capability outside ``bounding`` removed; and what was removed.

    Capabilities this table does not know are kept (runc decides about them)."""
    out = dict(config)
    process = dict(out.get("process") or {})
    caps = dict(process.get("capabilities") or {})
    dropped: set[str] = set()
    for kind, names in caps.items():
        keep = []
        for name in names or []:
            bit = CAP_BIT.get(name)
            if bit is not None and not bounding >> bit & 1:
                dropped.add(name)
            else:
                keep.append(name)
        caps[kind] = keep
    if caps:
        process["capabilities"] = caps
        out["process"] = process
    return out, sorted(dropped)


def script(real_runc: str, python: str) -> str:
    """The wrapper's source: :func:`filter_caps`'s rule, inlined, then ``exec`` of the real
    runc. ``create``/``run`` carry the capabilities in ``<bundle>/config.json``
    (``process.capabilities``); ``exec`` in its ``--process`` file (``capabilities``)."""
    return f"""#!{python} -S
# conntrack-harness: runc wrapper, see harness/kindbuild/runcwrap.py
import json, os, sys
CAPS = {CAPS!r}
argv = sys.argv[1:]


def opt(names, default=None):
    for i, a in enumerate(argv):
        if a in names and i + 1 < len(argv):
            return argv[i + 1]
        for n in names:
            if a.startswith(n + "="):
                return a.split("=", 1)[1]
    return default


def bounded(path, get):
    with open("/proc/self/status") as f:
        bnd = int([ln for ln in f if ln.startswith("CapBnd:")][0].split()[1], 16)
    with open(path) as f:
        doc = json.load(f)
    caps = get(doc) or {{}}
    changed = False
    for kind, names in caps.items():
        keep = [n for n in names or [] if n not in CAPS or bnd >> CAPS.index(n) & 1]
        changed = changed or keep != (names or [])
        caps[kind] = keep
    if changed:
        with open(path + ".tmp", "w") as f:
            json.dump(doc, f)
        os.replace(path + ".tmp", path)


if "create" in argv or "run" in argv:
    bundle = opt(("--bundle", "-b"), ".")
    cfg = os.path.join(bundle, "config.json")
    bounded(cfg, lambda d: (d.get("process") or {{}}).get("capabilities"))
elif "exec" in argv:
    proc = opt(("--process", "-p"))
    if proc:
        bounded(proc, lambda d: d.get("capabilities"))
os.execv({real_runc!r}, [{real_runc!r}, *argv])
"""
