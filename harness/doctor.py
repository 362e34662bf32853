"""``conntrack-harness doctor``: are the prerequisites there? Read-only."""

from __future__ import annotations

import os
import platform
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness.backends.netns.topology import check_host_routes
from harness.errors import HarnessError
from harness.kernel.journal import stale_journals

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
    ct = Path("/proc/sys/net/netfilter/nf_conntrack_max")
    out.append(
        Check(
            "conntrack in kernel",
            ct.exists(),
            f"nf_conntrack_max = {ct.read_text().strip()}"
            if ct.exists()
            else "no /proc/sys/net/netfilter/nf_conntrack_max (nf_conntrack not built)",
        )
    )
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
    stale = list(stale_journals()) if os.geteuid() == 0 else []
    out.append(
        Check(
            "leftovers",
            not stale,
            "none"
            if not stale
            else f"{len(stale)} killed run(s) left changes: run 'conntrack-harness restore'",
        )
    )
    out.append(Check("kernel", True, platform.release()))
    return out
