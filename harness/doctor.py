"""``conntrack-harness doctor``: are the prerequisites there? Read-only."""

from __future__ import annotations

import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

from cthcommon.errors import HarnessError
from cthcommon.netns import NETNS_RUN_DIR
from harness.backends.netns.topology import check_host_routes
from harness.kernel import sysctl
from harness.kernel.conntrack import kernel_default_table
from harness.kernel.journal import stale_journals
from harness.restore import orphan_paths
from harness.upstream import release

# program -> Debian package that provides it
TOOLS = {
    "ip": "iproute2",
    "iptables": "iptables",
    "iptables-restore": "iptables",
    "nft": "nftables",
    "conntrack": "conntrack",
    "dnsmasq": "dnsmasq-base",
    "nginx": "nginx-light",
    "tcpdump": "tcpdump",
}


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def checks() -> list[Check]:
    out = [
        Check(
            "root",
            os.geteuid() == 0,
            "running as root" if os.geteuid() == 0 else "run as root (sudo)",
        )
    ]
    for tool, pkg in TOOLS.items():
        path = shutil.which(tool)
        out.append(
            Check(f"tool {tool}", path is not None, path or f"missing: apt-get install {pkg}")
        )
    out.append(conntrack_max_check())
    out.append(
        Check(
            "network namespaces",
            Path("/proc/self/ns/net").exists(),
            "supported" if Path("/proc/self/ns/net").exists() else "not supported",
        )
    )
    out.append(
        Check(
            "kernel log",
            os.access("/dev/kmsg", os.R_OK),
            "/dev/kmsg readable ('table full' lines)"
            if os.access("/dev/kmsg", os.R_OK)
            else "/dev/kmsg not readable: table-full lines will not be recorded",
        )
    )
    try:
        check_host_routes()
        out.append(Check("address ranges", True, "no overlap with the host's routes"))
    except HarnessError as e:
        out.append(Check("address ranges", False, str(e)))
    except Exception as e:  # ip missing: already reported above
        out.append(Check("address ranges", False, f"could not read routes: {e}"))
    root = os.geteuid() == 0  # journals are root's alone
    stale = list(stale_journals()) if root else []
    orphans = [p for p in orphan_paths() if p.parent == NETNS_RUN_DIR] if root else []
    if stale:
        detail = f"{len(stale)} killed run(s) left changes: run 'conntrack-harness restore'"
    elif orphans:
        detail = (
            f"{len(orphans)} cth- namespace(s) no journal accounts for: run "
            "'conntrack-harness restore --orphans'"
        )
    elif not root:
        detail = "not checked: needs root"
    else:
        detail = "none"
    out.append(Check("leftovers", not stale and not orphans, detail))
    out.append(Check("kernel", True, platform.release()))
    out += upstream_checks()
    return out


def upstream_checks() -> list[Check]:
    """Each pinned upstream part of the default release: version, and where it came from."""
    from harness.upstream.cli import rows

    out = []
    for r in rows([release()]):
        if r["state"] == "present":
            detail = f"{r['version']} from {r['origin'] or r['source']} -> {r['path']}"
        elif r["state"] == "blocked":
            # not a missing prerequisite: NodeLocal then runs node-cache's own Corefile and
            # iptables rules on the pinned CoreDNS, labelled as a stand-in in result.json
            detail = (
                f"{r['version']} BLOCKED here (see harness/upstream/versions.toml); NodeLocal "
                "runs node-cache's Corefile and rules on the pinned CoreDNS, labelled stand-in"
            )
        else:
            detail = f"{r['version']} missing: run 'conntrack-harness upstream build'"
        ok = r["state"] in ("present", "blocked")
        out.append(Check(f"upstream {r['binary']}", ok, detail))
    return out


def conntrack_max_check() -> Check:
    """Informational: the table size every namespace is held to, against the kernel default."""
    try:
        cur = int(sysctl.read("net.netfilter.nf_conntrack_max"))
        buckets = int(sysctl.read("net.netfilter.nf_conntrack_buckets"))
    except (OSError, ValueError):
        return Check(
            "conntrack in kernel",
            False,
            "no /proc/sys/net/netfilter/nf_conntrack_max (nf_conntrack not built or loaded)",
        )
    default = kernel_default_table(sysctl.mem_total_bytes())
    detail = f"nf_conntrack_max = {cur} (nf_conntrack_buckets {buckets})"
    if cur < default or buckets < default:
        detail += (
            f"; below the kernel's boot default ({default:,} for both, from this machine's "
            "memory): if no run of yours set them, a killed run may have left them: "
            f"'conntrack-harness restore --conntrack-max {default}' (it puts the buckets back "
            "too)"
        )
    return Check("conntrack in kernel", True, detail)
