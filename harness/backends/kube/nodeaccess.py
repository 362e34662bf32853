"""Reaching a node's own network namespace: ``docker exec`` into a container node (kind),
or ``kubectl exec`` into the run's hostNetwork probe pod on a real node (kubeconfig).

A kind node is a container on this host, and its pods' processes are this host's processes:
so its network namespace is ``/proc/<node init PID>/ns/net`` and a pod's is
``/proc/<pod sandbox PID>/ns/net``, handles the harness's own namespace code takes
(:mod:`cthcommon.netns`; the aged warm-up, :mod:`harness.steady.warmup`). A real node's are not
this host's: none.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection

from cthcommon import netns
from cthcommon.errors import BackendError
from harness.backends.kube import commands
from harness.backends.kube.counters import (
    NodeStat,
    parse_netns_link,
    parse_node_probe,
)
from harness.backends.kube.proc import Completed, Runner
from harness.dataplane.faults import listing_argv, named_counters
from harness.kernel.journal import is_same_process, process_start_time
from harness.kernel.process import descendants, descendants_named
from harness.steady.model import Timeouts

# Timeouts field -> the node's sysctl file, in the order TIMEOUTS_ARGV reads them
TIMEOUT_FILES = {
    "tcp_time_wait": "nf_conntrack_tcp_timeout_time_wait",
    "tcp_close": "nf_conntrack_tcp_timeout_close",
    "udp": "nf_conntrack_udp_timeout",
    "udp_stream": "nf_conntrack_udp_timeout_stream",
}
TIMEOUTS_ARGV = ["cat", *(f"/proc/sys/net/netfilter/{f}" for f in TIMEOUT_FILES.values())]


def parse_timeouts(text: str) -> Timeouts:
    """Output of :data:`TIMEOUTS_ARGV` in a node: one integer a line."""
    vals = text.split()
    if len(vals) != len(TIMEOUT_FILES) or not all(v.isdigit() for v in vals):
        raise BackendError("unexpected conntrack timeout output", text=text[:200])
    return Timeouts(**{k: float(v) for k, v in zip(TIMEOUT_FILES, vals, strict=True)})


PROBE_ARGV = [
    "cat",
    "/proc/net/stat/nf_conntrack",
    "/proc/sys/net/netfilter/nf_conntrack_count",
    "/proc/sys/net/netfilter/nf_conntrack_max",
]


LISTING_ARGV = ["conntrack", "-L"]
# the bug bundle's per-node files: what is installed in the node's namespace
EVIDENCE = (
    ("iptables-save.txt", ["iptables-save"]),
    ("conntrack-S.txt", ["conntrack", "-S"]),
    ("nft-ruleset.txt", ["nft", "list", "ruleset"]),
)


class CommandNodeAccess:
    """A node reached by running commands in its network namespace (``docker exec`` into a
    kind node, ``kubectl exec`` into a hostNetwork pod on a real one): what both read the same
    way. ``privileged``: the commands may list the table and the rules (CAP_NET_ADMIN)."""

    privileged = True

    def limits(self) -> dict[str, str]:
        """What cannot be measured through this access, per feature (result.json's
        ``unavailable``): nothing when privileged."""
        if self.privileged:
            return {}
        why = "the node probe is unprivileged (--allow-disruptive runs a privileged one)"
        return {
            "conntrack_states": f"the nodes' tables are not listed: no entries by state or "
            f"kind in the timeline, no snapshot near full; {why}",
            "node_rules": f"the bundle has no iptables/nft rules of the nodes, only their "
            f"conntrack statistics; {why}",
        }

    def _exec(self, node: str, argv: list[str], *, check: bool = True) -> Completed:
        raise NotImplementedError

    def stat(self, node: str) -> NodeStat:
        return parse_node_probe(self._exec(node, PROBE_ARGV).stdout)

    def timeouts(self, node: str) -> Timeouts:
        """The conntrack timeouts in force in the node's namespace (world-readable)."""
        return parse_timeouts(self._exec(node, TIMEOUTS_ARGV).stdout)

    def fault_counters(self, node: str, table: str) -> dict[str, int]:
        """The fault table's named counters in the node ({} where it is not loaded, or the
        access is unprivileged and cannot list it)."""
        if not self.privileged:
            return {}
        out = self._exec(node, listing_argv(table), check=False)
        return named_counters(out.stdout) if out.returncode == 0 else {}

    def listing(self, node: str) -> str:
        """``conntrack -L`` in the node ("" without the tool, or unprivileged)."""
        if not self.privileged:
            return ""
        out = self._exec(node, LISTING_ARGV, check=False)
        return out.stdout if out.returncode == 0 else ""

    def forget(
        self, node: str, sources: Collection[str], destinations: Collection[str]
    ) -> int | None:
        """Delete the node's conntrack entries whose original source is one of ``sources``
        or whose original destination is one of ``destinations`` (a run's own pods and
        Service), nothing else of its table; how many. None: unprivileged, nothing done."""
        if not self.privileged:
            return None
        if not sources and not destinations:
            return 0
        argv = commands.forget_flows_argv(sorted(sources), sorted(destinations))
        out = self._exec(node, argv, check=False)
        return commands.deleted_count(out.stdout + out.stderr)

    def evidence(self, node: str) -> dict[str, str]:
        """For bug bundles: the node's rules and conntrack statistics (what is installed);
        unprivileged, only the statistics it can read."""
        if not self.privileged:
            return {"nf_conntrack-stat.txt": self._exec(node, PROBE_ARGV).stdout}
        out: dict[str, str] = {}
        for name, argv in EVIDENCE:
            done = self._exec(node, argv, check=False)
            out[name] = done.stdout if done.returncode == 0 else f"(failed: {done.stderr.strip()})"
        return out


class DockerNodeAccess(CommandNodeAccess):
    """kind: the node is a container; its network namespace is the node's."""

    flushes = True

    def __init__(self, runner: Runner) -> None:
        self._run = runner
        # node -> its container's init (PID, start time), as last asked
        self._inits: dict[str, tuple[int, int]] = {}

    def _exec(self, node: str, argv: list[str], *, check: bool = True) -> Completed:
        return self._run(commands.docker_exec(node, argv), check=check)

    def flush(self, node: str) -> None:
        self._run(commands.node_conntrack_flush(node))

    def _init_pid(self, node: str) -> int | None:
        """The node container's init, asked of Docker once and again only when that process
        is gone (a restarted container): the kube-proxy watch looks a node's processes up
        every second, and a ``docker inspect`` each time would load the CPUs the load runs on.
        The PID is kept with its start time: a PID the kernel gave to another process since
        (the host's, say) is not the node's, and its namespace is never entered for it."""
        known = self._inits.get(node)
        if known is not None and is_same_process(*known):
            return known[0]
        out = self._run(commands.docker_init_pid(node), check=False).stdout.strip()
        pid = int(out) if out.isdigit() and int(out) > 0 else None
        start = process_start_time(pid) if pid is not None else None
        if pid is None or start is None:
            self._inits.pop(node, None)
            return None
        self._inits[node] = (pid, start)
        return pid

    def host_pids(self, node: str, comm: str) -> list[int]:
        """The node's processes named ``comm``, by their host PIDs (the node is a container
        on this host: its processes are this host's, below the container's init)."""
        init = self._init_pid(node)
        return descendants_named(init, comm) if init is not None else []

    def netns(self, node: str) -> str | None:
        """The node's network namespace: its container's init's (None if it is not running)."""
        init = self._init_pid(node)
        return netns.of_pid(init) if init is not None else None

    def pod_netns(self, node: str, ips: Collection[str]) -> dict[str, str]:
        """IP -> the network namespace of the node's pod with that IP, for the ``ips`` found.

        Each namespace below the node's init is looked at once, through a process in it (a
        pod sandbox's ``pause`` when there is one: it lives as long as the pod); its addresses
        (``/proc/PID/net/fib_trie``) name the pod. The node's own namespace (host-network pods)
        is skipped."""
        init = self._init_pid(node)
        if init is None:
            return {}
        own = _ns_inode(init)
        seen: dict[int, int] = {}  # namespace inode -> a process in it, pause preferred
        for pid, comm in descendants(init).items():
            ino = _ns_inode(pid)
            if ino is None or ino == own:
                continue
            if ino not in seen or comm == "pause":
                seen[ino] = pid
        wanted, out = set(ips), {}
        for pid in seen.values():
            for ip in netns.addresses_of(pid) & wanted:
                out[ip] = netns.of_pid(pid)
        return out

    def netns_inode(self, node: str) -> int | None:
        out = self._run(commands.node_netns_link(node), check=False)
        return parse_netns_link(out.stdout) if out.returncode == 0 else None


def _ns_inode(pid: int) -> int | None:
    try:
        return os.stat(netns.of_pid(pid)).st_ino
    except OSError:
        return None


class ProbeNodeAccess(CommandNodeAccess):
    """An existing cluster: through the run's hostNetwork probe pod on each node, which shares
    the node's network namespace. Unprivileged (the default) it reads the counters, the table
    size and the timeouts; privileged (``--allow-disruptive``) it also lists the table, the
    fault's counters and the rules. It never flushes a node's table (counters are deltas)."""

    flushes = False

    def __init__(
        self,
        runner: Runner,
        kubeconfig: str | None,
        namespace: str,
        pod_of: Callable[[str], str],
        *,
        privileged: bool = False,
    ) -> None:
        self._run = runner
        self._kubeconfig = kubeconfig
        self._ns = namespace
        self._pod = pod_of
        self.privileged = privileged

    def _exec(self, node: str, argv: list[str], *, check: bool = True) -> Completed:
        return self._run(
            commands.kubectl_exec(self._kubeconfig, self._ns, self._pod(node), argv), check=check
        )

    def host_pids(self, node: str, comm: str) -> list[int]:
        """A real node's processes are not this host's: none."""
        return []

    def netns(self, node: str) -> str | None:
        """A real node's network namespace is not this host's: none."""
        return None

    def pod_netns(self, node: str, ips: Collection[str]) -> dict[str, str]:
        return {}

    def flush(self, node: str) -> None:
        """Flushing a real node's table would drop every flow's NAT state on it: never done
        (counters are taken as deltas instead; a phase forgets only the run's own flows,
        :meth:`forget`)."""

    def netns_inode(self, node: str) -> int | None:
        """A real node's kernel log is not readable from here."""
        return None
