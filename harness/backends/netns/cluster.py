"""The netns backend's Cluster: apply a phase, drive load from the client pods, measure.

The topology is built once and reused by every phase; a phase only changes what its
remediations and faults name, and reverts them afterwards. Between phases the nodes'
conntrack tables are flushed, so no phase inherits another's TIME_WAIT entries.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from harness.backends.base import Progress
from harness.backends.netns import plan as P
from harness.backends.netns.counters import delta, read_counters
from harness.backends.netns.plan import plan_topology
from harness.backends.netns.steady import PhaseSteady
from harness.backends.netns.topology import Topology
from harness.capture.tcpdump import PodCapture
from harness.dns.resolvconf import ResolvConf
from harness.errors import BackendError
from harness.kernel import sysctl
from harness.kernel.journal import Journal
from harness.kernel.netns import run
from harness.kernel.process import Proc, spawn, stop_pid
from harness.kernel.sampler import NodeProbe, NodeSeries, Sampler
from harness.measurement import PhaseMeasurement
from harness.result import CaptureResult
from harness.scenario.model import (
    FQDN,
    ConntrackSysctls,
    CoreDNSChange,
    DNSConfig,
    LoadSpec,
    NodeLocalDNS,
    Phase,
    Pooling,
    RaceWindowFault,
    ResolverOption,
    Scenario,
)

CT = "net.netfilter."


def pod_resolv(
    dns_config: DNSConfig,
    *,
    namespace: str,
    domain: str,
    nameserver_ips: dict[str, str],
    extra_options: dict[str, str | None],
) -> ResolvConf:
    """What kubelet writes into a pod's resolv.conf for this dnsConfig (pure)."""
    ns_ips = [nameserver_ips.get(n, n) for n in dns_config.nameservers]
    searches = dns_config.searches
    if searches is None:
        searches = [f"{namespace}.svc.{domain}", f"svc.{domain}", domain]
    options = {**dns_config.option_map(), **extra_options}
    return ResolvConf.build(ns_ips, searches, options)


def lookup_names(names: list[str], *, fqdn: bool, namespace: str, domain: str) -> list[str]:
    """With the FQDN remediation, names become absolute (trailing dot, no search list)."""
    if not fqdn:
        return names
    out = []
    for n in names:
        if n.endswith("."):
            out.append(n)
        elif "." not in n:
            out.append(f"{n}.{namespace}.svc.{domain}.")
        elif n.endswith(domain) or n.count(".") >= 2:
            out.append(n + ".")
        else:  # service.namespace
            out.append(f"{n}.svc.{domain}.")
    return out


def expand_names(names: list[str], count: int) -> list[str]:
    """A name with ``{n}`` becomes ``count`` distinct names (cache-busting, e.g. random
    subdomains), interleaved with the others in the order the engine cycles through them."""
    if not any("{n}" in n for n in names):
        return names
    return [n.replace("{n}", str(i)) for i in range(max(1, count)) for n in names]


class NetnsCluster:
    backend = "netns"

    def __init__(
        self,
        scenario: Scenario,
        run_id: str,
        journal: Journal,
        guard: sysctl.SysctlGuard,
        *,
        capture_pcap: bool = False,
    ) -> None:
        self.scenario = scenario
        self.capture_pcap = capture_pcap
        self.pcaps: dict[str, bytes] = {}  # phase label -> unanswered same-port pairs
        self.run_id = run_id
        self.journal = journal
        self.guard = guard
        max_dns = max(
            [
                r.replicas or 0
                for ph in scenario.phases
                for r in ph.remediations
                if isinstance(r, CoreDNSChange)
            ],
            default=0,
        )
        self.plan = plan_topology(scenario.cluster, run_id, max_coredns=max_dns)
        self.topology = Topology(
            self.plan,
            journal,
            coredns_cache=scenario.cluster.coredns.cache,
            coredns_max_concurrent=scenario.cluster.coredns.max_concurrent,
        )
        self.topology.coredns_replicas = scenario.cluster.coredns.replicas
        self.probes: list[NodeProbe] = []
        self._stack = ExitStack()
        self._warmup_gap_s = 0.8  # warm-up end -> load start; measured by each phase

    def __enter__(self) -> NetnsCluster:
        try:
            self._stack.enter_context(self.topology)
            if self.topology.coredns_replicas != len(self.plan.role("coredns")):
                self.topology.apply_kube_proxy()
            if self.scenario.cluster.nodelocal_dns:
                self.topology.enable_nodelocal()
            for node in self.plan.nodes:
                probe = NodeProbe(node.name, node.ns)
                self.probes.append(probe)
                self._stack.callback(probe.close)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def nodes(self) -> list[str]:
        return [n.name for n in self.plan.nodes]

    # --- phase application -------------------------------------------------------------
    @contextmanager
    def phase(self, phase: Phase) -> Iterator[dict[str, Any]]:
        """Apply remediations/faults; yield the effective per-phase settings; revert on exit."""
        settings: dict[str, Any] = {
            "pooling": None,
            "fqdn": False,
            "options": {},
            "nameservers": None,
            "pin_cpus": False,
        }
        # Flush before the remediations too, not only before the load: a remediation that
        # starts a server (NodeLocal's cache forwards through tracked flows) must not start
        # against the previous phase's full table of TIME_WAIT entries.
        self.reset()
        with self.guard.scope(), ExitStack() as undo:
            for r in phase.remediations:
                if isinstance(r, Pooling):
                    settings["pooling"] = r.pool_size
                elif isinstance(r, ConntrackSysctls):
                    self._apply_ct_sysctls(
                        r.nf_conntrack_max, r.nf_conntrack_buckets, r.tcp_timeout_time_wait
                    )
                elif isinstance(r, ResolverOption):
                    settings["options"].update({o.name: o.value for o in r.options})
                elif isinstance(r, FQDN):
                    settings["fqdn"] = True
                elif isinstance(r, CoreDNSChange):
                    undo.enter_context(self._coredns(r))
                elif isinstance(r, NodeLocalDNS):
                    undo.enter_context(self._nodelocal())
                    settings["nameservers"] = ["nodelocal"]
            for fault in phase.faults:
                undo.enter_context(self._race_fault(fault))
                settings["pin_cpus"] = fault.pin_cpus
            yield settings

    @contextmanager
    def _nodelocal(self) -> Iterator[None]:
        already = self.topology.nodelocal_enabled
        self.topology.enable_nodelocal()
        try:
            yield
        finally:
            if not already:
                self.topology.disable_nodelocal()

    @contextmanager
    def _race_fault(self, fault: RaceWindowFault) -> Iterator[None]:
        for node in self.plan.nodes:
            self.guard.set(CT + "nf_conntrack_acct", 1, node.ns)
        self.topology.enable_race_fault(fault.probability)
        servers = self.topology.dns_server_pids()
        if fault.pin_cpus:
            self.topology.pin(servers, {0})
        try:
            yield
        finally:
            self.topology.disable_race_fault()
            if fault.pin_cpus:
                self.topology.pin(servers, set(range(os.cpu_count() or 1)))

    def _apply_ct_sysctls(
        self, cmax: int | None, buckets: int | str | None, time_wait: int | None
    ) -> None:
        if cmax is not None:
            self.guard.set(CT + "nf_conntrack_max", cmax)
        if buckets is not None:
            b = (
                (cmax or int(sysctl.read(CT + "nf_conntrack_max"))) // 4
                if buckets == "auto"
                else int(buckets)
            )
            self.guard.set(CT + "nf_conntrack_buckets", max(b, 1024))
        if time_wait is not None:
            for node in self.plan.nodes:
                self.guard.set(CT + "nf_conntrack_tcp_timeout_time_wait", time_wait, node.ns)

    def apply_node_sysctls(self) -> None:
        ns = self.scenario.node_sysctls
        self._apply_ct_sysctls(
            ns.nf_conntrack_max, ns.nf_conntrack_buckets, ns.tcp_timeout_time_wait
        )
        per_ns = {
            "tcp_timeout_close": ns.tcp_timeout_close,
            "udp_timeout": ns.udp_timeout,
            "udp_timeout_stream": ns.udp_timeout_stream,
        }
        for key, value in per_ns.items():
            if value is not None:
                for node in self.plan.nodes:
                    self.guard.set(CT + "nf_conntrack_" + key, value, node.ns)

    @contextmanager
    def _coredns(self, r: CoreDNSChange) -> Iterator[None]:
        topo = self.topology
        old = (topo.coredns_cache, topo.coredns_max_concurrent, topo.coredns_replicas)
        try:
            if r.cache is not None or r.max_concurrent is not None:
                topo.restart_coredns(
                    cache=old[0] if r.cache is None else r.cache,
                    max_concurrent=r.max_concurrent or old[1],
                )
            if r.replicas is not None:
                topo.coredns_replicas = r.replicas
                topo.apply_kube_proxy()
            yield
        finally:
            if (topo.coredns_cache, topo.coredns_max_concurrent) != old[:2]:
                topo.restart_coredns(cache=old[0], max_concurrent=old[1])
            if topo.coredns_replicas != old[2]:
                topo.coredns_replicas = old[2]
                topo.apply_kube_proxy()

    def reset(self) -> None:
        self.topology.flush_conntrack()

    # --- load -----------------------------------------------------------------------
    def _worker_plan(
        self, load: LoadSpec, settings: dict[str, Any]
    ) -> tuple[dict[str, Any], ResolvConf]:
        sc = self.scenario.cluster
        dns_config = sc.dns_config
        if settings["nameservers"]:
            dns_config = dns_config.model_copy(update={"nameservers": settings["nameservers"]})
        resolv = pod_resolv(
            dns_config,
            namespace=sc.namespace,
            domain=sc.cluster_domain,
            nameserver_ips={"cluster-dns": P.DNS_SERVICE_IP, "nodelocal": P.NODELOCAL_IP},
            extra_options=settings["options"],
        )
        clients = self.plan.role("client")
        for pod in clients:
            self.topology.write_resolv_conf(pod.ns, resolv)
        wp: dict[str, Any] = {"duration_s": load.duration_s}
        if load.dns is not None:
            names = lookup_names(
                expand_names(load.dns.names, int(load.dns.rate * load.duration_s)),
                fqdn=settings["fqdn"],
                namespace=sc.namespace,
                domain=sc.cluster_domain,
            )
            wp["dns"] = {
                "pods": [{"netns": p.ns, "ip": p.ip, "resolv": resolv.render()} for p in clients],
                "plan": {**load.dns.model_dump(), "names": names, "duration_s": load.duration_s},
            }
        if load.http is not None:
            http = load.http.model_dump()
            if settings["pooling"]:
                http.update(mode="pooled", pool_size=settings["pooling"])
            wp["http"] = {
                "targets": [{"netns": p.ns, "ip": P.HTTP_SERVICE_IP, "port": 80} for p in clients],
                "plan": {**http, "duration_s": load.duration_s},
            }
        return wp, resolv

    def _counters(self) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
        nodes = {n.name: read_counters(n.ns, "cth_obs") for n in self.plan.nodes}
        server: dict[str, int] = {}
        for pod in self.plan.role("coredns"):
            for k, v in read_counters(pod.ns, "cth_srv").items():
                server[k] = server.get(k, 0) + v
                server[f"{pod.name}/{k}"] = v
        up = read_counters(self.plan.upstream_ns, "cth_srv")
        server["upstream/rx"] = up.get("rx", 0)
        return nodes, server

    def measure(
        self,
        phase: Phase,
        settings: dict[str, Any],
        load: LoadSpec,
        progress: Progress | None = None,
    ) -> PhaseMeasurement:
        self.reset()
        wp, resolv = self._worker_plan(load, settings)
        wd = self.topology.workdir
        plan_file, out_file = wd / f"{phase.name}.plan.json", wd / f"{phase.name}.out.json"
        out_file.unlink(missing_ok=True)
        cmax = int(sysctl.read(CT + "nf_conntrack_max"))
        self._fast_phase(wp)
        steady = self._warm_up(load, wp, resolv, settings, cmax)
        plan_file.write_text(json.dumps(wp))
        nodes0, server0 = self._counters()
        argv = [
            sys.executable,
            "-m",
            "loadgen.worker",
            "--plan",
            str(plan_file),
            "--out",
            str(out_file),
        ]
        if settings.get("pin_cpus") and (os.cpu_count() or 1) > 1:
            argv = ["taskset", "-c", "1", *argv]  # DNS servers are on CPU 0
        hits0 = self.topology.race_fault_hits() if phase.faults else 0
        capture = self._pod_capture()
        with capture or nullcontext():
            sampler = Sampler(self.probes, cmax)
            sampler.start()
            # the longest a lookup can take after the last one starts: every attempt times out
            drain = resolv.timeout * resolv.attempts * max(1, len(resolv.nameservers)) + 5
            proc, series = self._drive_load(
                phase.name,
                argv,
                sampler,
                cmax=cmax,
                duration_s=load.duration_s,
                limit_s=load.duration_s + drain + 30,
                progress=progress,
            )
        if proc.popen.returncode != 0 or not out_file.exists():
            raise BackendError(f"load generator failed ({proc.popen.returncode}): {proc.tail()}")
        self.topology.check_procs()  # a server that died mid-phase voids the measurement
        nodes1, server1 = self._counters()
        out = json.loads(out_file.read_text())
        extra: dict[str, Any] = {}
        if "started_monotonic" in out:  # when the load began, on the sampler's timeline
            extra["load_start_s"] = round(out.pop("started_monotonic") - sampler.t0, 3)
            extra["steady_state"] = self._steady_result(steady, series, sampler.t0, extra, out)
        if phase.faults:
            extra["fault"] = {
                "kind": "race-window",
                "injected": True,
                "probability": phase.faults[0].probability,
                "hits": self.topology.race_fault_hits() - hits0,
                "pinned_cpus": bool(settings.get("pin_cpus")),
            }
        if capture is not None:
            extra["capture"] = self._reduce(capture, phase.name)
        if self.topology.nodelocal_enabled:
            extra["nodelocal"] = {
                "interface": self.topology.nodelocal_interface,
                "ip": P.NODELOCAL_IP,
            }
        return PhaseMeasurement(
            load=out,
            series=series,
            node_counters={n: delta(nodes0[n], nodes1[n]) for n in nodes1},
            server_counters=delta(server0, server1),
            conntrack_max=cmax,
            duration_s=sampler.duration,
            resolv=resolv,
            sampler_cpu_s=sampler.cpu_s,
            extra=extra,
            kernel=platform.release(),
        )

    def _fast_phase(self, wp: dict[str, Any]) -> None:
        """Bench-issue design (bench/README.md): a phase measures the same lookups, faster.

        DNS drain "first-timeout": once every lookup has started, stop waiting for those
        that have already waited one full timeout (they are timeouts whatever follows) and
        report them as ``dns.unfinished``; a lookup nobody answers otherwise holds the phase
        for ``timeout * attempts`` per search candidate (20 s with the defaults).
        """
        if "dns" in wp:
            wp["dns"]["plan"]["drain"] = "first-timeout"

    # --- steady state (harness.backends.netns.steady) ---------------------------------
    def _warm_up(
        self,
        load: LoadSpec,
        wp: dict[str, Any],
        resolv: ResolvConf,
        settings: dict[str, Any],
        cmax: int,
    ) -> PhaseSteady:
        """The phase's steady-state model; the aged warm-up brings the table there."""
        steady = PhaseSteady(
            self.plan, load, wp=wp, resolv=resolv, settings=settings, table_max=cmax
        )
        steady.prepare(self.guard, startup_s=self._warmup_gap_s)
        return steady

    def _steady_result(
        self,
        steady: PhaseSteady,
        series: dict[str, NodeSeries],
        t0: float,
        extra: dict[str, Any],
        out: dict[str, Any],
    ) -> dict[str, Any]:
        res = steady.finish(series, sampler_t0=t0, load_start_s=extra["load_start_s"], out=out)
        gap = res.get("warmup", {}).get("gap_to_load_s")
        if isinstance(gap, float) and 0 < gap < 10:
            self._warmup_gap_s = gap
        return dict(res)

    def _drive_load(
        self,
        name: str,
        argv: list[str],
        sampler: Sampler,
        *,
        cmax: int,
        duration_s: float,
        limit_s: float,
        progress: Progress | None,
    ) -> tuple[Proc, dict[str, NodeSeries]]:
        """Run the load worker to its end (or ``limit_s``), reporting progress; then stop
        the worker and the sampler, on every path."""
        wd = self.topology.workdir
        proc = spawn(self.journal, f"loadgen-{name}", argv, log=wd / f"loadgen-{name}.log")
        deadline = time.monotonic() + limit_s
        try:
            while proc.popen.poll() is None:
                if time.monotonic() > deadline:
                    raise BackendError(f"load generator did not finish: {proc.tail()}")
                if progress:
                    live = {
                        s.node: (s.timeline[-1][1] if s.timeline else 0)
                        for s in sampler.series.values()
                    }
                    progress(
                        name,
                        min(sampler.duration, duration_s),
                        duration_s,
                        {"conntrack": live, "max": cmax},
                    )
                time.sleep(0.5)
        finally:
            stop_pid(proc.pid, proc.start)
            series = sampler.stop()
        return proc, series

    def _pod_capture(self) -> PodCapture | None:
        """With --pcap: tcpdump in every client pod for the phase."""
        if not self.capture_pcap:
            return None
        pods = [(p.name, p.ns) for p in self.plan.role("client")]
        return PodCapture(self.journal, pods, self.topology.workdir / "pcap")

    def _reduce(self, capture: PodCapture, phase: str) -> CaptureResult:
        label = phase
        n = 1
        while label in self.pcaps:  # repeats of a phase
            n += 1
            label = f"{phase}-{n}"
        out = self.topology.workdir / "pcap" / "reduced" / f"{label}.pcap"
        summary = capture.reduce(out, label)
        self.pcaps[label] = out.read_bytes()
        return summary.as_result()

    def evidence(self) -> dict[str, str | bytes]:
        """Per-node iptables-save and conntrack -S, per-pod resolv.conf: for bug bundles.
        With --pcap, each phase's unanswered same-port pairs as ``pcap/<phase>.pcap``."""
        out: dict[str, str | bytes] = {f"pcap/{k}.pcap": v for k, v in self.pcaps.items()}
        for node in self.plan.nodes:
            out[f"{node.name}/iptables-save.txt"] = run(["iptables-save"], netns=node.ns).stdout
            out[f"{node.name}/conntrack-S.txt"] = run(["conntrack", "-S"], netns=node.ns).stdout
            out[f"{node.name}/nft-ruleset.txt"] = run(
                ["nft", "list", "ruleset"], netns=node.ns
            ).stdout
        for pod in self.plan.role("client"):
            p = Path("/etc/netns") / pod.ns / "resolv.conf"
            if p.exists():
                out[f"pods/{pod.name}/resolv.conf"] = p.read_text()
        return out
