"""Read a namespace's (or the host's) conntrack state without running any load. Read-only.

This is seed 002's checklist as code: ``conntrack -S`` counters (from
``/proc/net/stat/nf_conntrack``), ``nf_conntrack_count``/``max``, the conntrack timeouts, the
kernel's "table full" lines, and resolv.conf. Nothing is written anywhere.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from cthcommon import netns as ns
from cthcommon.errors import BadInput, CommandFailed
from cthcommon.resolvconf import ResolvConf
from harness.diagnose.procfs import parse_stat, table_full_lines
from harness.judge.diagnosis import Diagnosis, Signals, classify

STAT_PATH = "/proc/thread-self/net/stat/nf_conntrack"
SYSCTL_DIR = "/proc/sys/net/netfilter"
# The window a live diagnosis looks at: "table full" lines older than this are another
# incident's (e.g. an earlier run's), not this one's.
DEFAULT_WINDOW_S = 300.0
TIMEOUT_SYSCTLS = (
    "nf_conntrack_tcp_timeout_time_wait",
    "nf_conntrack_tcp_timeout_close",
    "nf_conntrack_tcp_timeout_established",
    "nf_conntrack_udp_timeout",
    "nf_conntrack_udp_timeout_stream",
)


@dataclass(frozen=True)
class LiveReadings:
    """One read of a namespace's conntrack state (``netns=None``: the host)."""

    netns: str | None
    count: int | None
    max: int | None
    buckets: int | None
    stat: dict[str, int]
    timeouts: dict[str, int]
    table_full: list[str] | None  # None: dmesg could not be read
    resolv_conf_path: str | None
    resolv_conf: ResolvConf | None
    notes: list[str] = field(default_factory=list)
    window_s: float | None = None  # "table full" lines counted only this far back


def uptime_s() -> float:
    """Seconds since boot: the clock dmesg stamps its lines with."""
    return float(Path("/proc/uptime").read_text().split()[0])


def _read(netns: str | None, path: str) -> str | None:
    try:
        if netns is None:
            host_path = path.replace("/proc/thread-self/", "/proc/self/")
            with open(host_path) as f:
                return f.read()
        fd = ns.open_in(netns, path)
        with os.fdopen(fd) as f:
            return f.read()
    except FileNotFoundError:
        return None


def _read_int(netns: str | None, name: str) -> int | None:
    text = _read(netns, f"{SYSCTL_DIR}/{name}")
    return int(text.strip()) if text and text.strip().isdigit() else None


def default_resolv_conf(netns: str | None) -> str | None:
    """Where ``ip netns exec`` would find the pod's resolv.conf (host: /etc/resolv.conf)."""
    path = f"/etc/netns/{netns}/resolv.conf" if netns else "/etc/resolv.conf"
    return path if Path(path).is_file() else None


def read_live(
    netns: str | None = None,
    *,
    resolv_conf: str | Path | None = None,
    dmesg_text: str | None = None,
    window_s: float | None = DEFAULT_WINDOW_S,
    now_s: float | None = None,
) -> LiveReadings:
    """Read counters, sysctls, "table full" lines and resolv.conf. Changes nothing.

    ``dmesg_text`` may be supplied (e.g. from a node's journal); otherwise ``dmesg`` is run.
    Only "table full" lines of the last ``window_s`` seconds count (``None``: all), before
    ``now_s`` (seconds since boot; default: now); the host's reading counts only the initial
    namespace's lines, not those of other namespaces.
    """
    if netns is not None and not Path(ns.netns_path(netns)).exists():
        raise BadInput(
            "no such network namespace",
            field="netns",
            value=netns,
            allowed="a name under /run/netns",
        )
    notes: list[str] = []
    stat_text = _read(netns, STAT_PATH)
    stat = parse_stat(stat_text) if stat_text else {}
    if not stat_text:
        notes.append("no /proc/net/stat/nf_conntrack: conntrack is not loaded here")
    if dmesg_text is None:
        try:
            dmesg_text = ns.run(["dmesg"], timeout=10).stdout
        except CommandFailed as e:
            notes.append(f"dmesg unreadable: {e}")
    inode = ns.inode(netns) if netns else None
    since = None
    if window_s is not None:
        since = (uptime_s() if now_s is None else now_s) - window_s
    full = (
        table_full_lines(dmesg_text, inode, initial_only=netns is None, since_s=since)
        if dmesg_text is not None
        else None
    )
    rc_path = str(resolv_conf) if resolv_conf else default_resolv_conf(netns)
    rc = ResolvConf.parse(Path(rc_path).read_text()) if rc_path else None
    return LiveReadings(
        netns=netns,
        count=_read_int(netns, "nf_conntrack_count"),
        max=_read_int(netns, "nf_conntrack_max"),
        buckets=_read_int(netns, "nf_conntrack_buckets"),
        stat=stat,
        timeouts={k: v for k in TIMEOUT_SYSCTLS if (v := _read_int(netns, k)) is not None},
        table_full=full,
        resolv_conf_path=rc_path,
        resolv_conf=rc,
        notes=notes,
        window_s=window_s,
    )


def live_signals(r: LiveReadings) -> Signals:
    """Turn a reading into classifier signals (counters are cumulative since boot/creation)."""
    flags = frozenset(r.resolv_conf.flags) if r.resolv_conf else frozenset()
    return Signals(
        conntrack_max=r.max,
        peak_count=r.count,
        drop=r.stat.get("drop", 0),
        early_drop=r.stat.get("early_drop", 0),
        insert_failed=r.stat.get("insert_failed", 0),
        clash_resolve=r.stat.get("clash_resolve", 0),
        table_full_lines=len(r.table_full or []),
        resolver_flags=flags,
        ndots=r.resolv_conf.ndots if r.resolv_conf else None,
        time_wait_s=r.timeouts.get("nf_conntrack_tcp_timeout_time_wait"),
    )


def diagnose_live(
    netns: str | None = None,
    *,
    resolv_conf: str | Path | None = None,
    dmesg_text: str | None = None,
    window_s: float | None = DEFAULT_WINDOW_S,
    now_s: float | None = None,
) -> tuple[LiveReadings, Diagnosis]:
    """``conntrack-harness diagnose`` on a live host or node: read, then classify."""
    readings = read_live(
        netns, resolv_conf=resolv_conf, dmesg_text=dmesg_text, window_s=window_s, now_s=now_s
    )
    diagnosis = classify(live_signals(readings))
    extra = [
        f"timeouts: {k.removeprefix('nf_conntrack_')}={v}s" for k, v in readings.timeouts.items()
    ]
    if readings.table_full is None:
        extra.append("dmesg not readable: 'table full' lines unknown")
    elif readings.window_s is not None:
        extra.append(f"'table full' lines looked for in the last {readings.window_s:g} s only")
    extra.extend(readings.notes)
    extra.append("counters are cumulative since the namespace (or host) was created")
    return readings, Diagnosis(
        diagnosis.cause,
        diagnosis.confidence,
        [*diagnosis.evidence, *extra],
        diagnosis.remediation,
        diagnosis.injected,
    )
