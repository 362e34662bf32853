"""The netns backend's Cluster: apply a phase, drive load from the client pods, measure.

The topology is built once and reused by every phase; a phase only changes what its
remediations and faults name, and reverts them afterwards. Between phases the nodes'
conntrack tables are flushed, so no phase inherits another's TIME_WAIT entries.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from cthcommon.errors import BackendError, HarnessError
from cthcommon.netns import run
from cthcommon.resolvconf import ResolvConf
from harness.backends.base import Progress
from harness.backends.netns import topologyplan as P
from harness.backends.netns.counters import delta, read_counters
from harness.backends.netns.events import EventRun, StaleSampler
from harness.backends.netns.levers import Levers
from harness.backends.netns.rollout import RolloutRun
from harness.backends.netns.statsd import SOURCE as STATSD_SOURCE
from harness.backends.netns.statsd import StatsdSampler
from harness.backends.netns.topology import Topology
from harness.backends.netns.topologyplan import plan_topology
from harness.backends.stages import Notice, Stages, Teardown
from harness.capture.tcpdump import PhaseCaptures, PodCapture
from harness.kernel import sysctl
from harness.kernel.journal import Journal
from harness.kernel.kubeproxywatch import KubeProxyWatch
from harness.kernel.process import Proc, spawn, stop_pid
from harness.kernel.sampler import NodeProbe, NodeSeries, Sampler
from harness.measurement import Observed, PhaseMeasurement
from harness.plan.types import CT, PhasePlan, RunPlan, SysctlPlan
from harness.plan.workerplan import worker_plan
from harness.results.endpoints import EndpointEvent, EndpointsResult, endpoints_result
from harness.results.evidence import Evidence
from harness.results.fault import fault_result
from harness.results.rollout import rollout_result
from harness.results.schema import SteadyStateResult
from harness.results.statsd import StatsdPhase, statsd_result
from harness.steady import phase as steady_phase
from harness.steady.warmup import AgedWarmup, WarmupTargets
from loadgen.http.plan import HTTPTarget
from loadgen.udp.sameport import SamePortResult
from loadgen.udp.statsd import StatsdResult
from loadgen.worker import PodSpec, WorkerPlan

EVENTS_LEAD_S = 4.0  # a phase with events: the load starts this long after its plan is written


class NetnsCluster:
    backend = "netns"

    def __init__(
        self,
        run_plan: RunPlan,
        run_id: str,
        journal: Journal,
        guard: sysctl.SysctlGuard,
        *,
        capture_pcap: bool = False,
        kubernetes: str | None = None,
        kube_proxy_release: str | None = None,
        notice: Notice | None = None,
    ) -> None:
        """``run_plan``: the run's plan, made once by the runner (bad input was found then,
        before anything is built). ``kubernetes``: the pinned Kubernetes release whose parts
        run (None: the versions file's default); given by
        ``BackendOptions.extra["kubernetes"]`` (`compare --run`).
        ``kube_proxy_release``: kube-proxy alone from this pinned release (`compare --run
        --parts kube-proxy`), labelled in ``environment.components``.
        ``notice`` hears the set-up, warm-up and teardown steps (``[netns] ...`` lines)."""
        self.stages = Stages(notice, "netns")
        self.capture_pcap = capture_pcap
        self.captures: PhaseCaptures | None = None  # with --pcap, once the topology is up
        self.phase_evidence = Evidence()  # each phase's conntrack -S and resolv.conf
        self.run_id = run_id
        self.journal = journal
        self.guard = guard
        self.run_plan = run_plan
        self.plan = plan_topology(
            run_plan.cluster, run_id, max_coredns=run_plan.max_coredns_replicas
        )
        corefile = run_plan.cluster.corefile
        self.topology = Topology(
            self.plan,
            journal,
            coredns=self.run_plan.coredns,
            kube_proxy=self.run_plan.kube_proxy,
            # `compare --kubernetes` (BackendOptions) overrides the scenario's pinned version
            kubernetes=kubernetes or self.run_plan.kube_proxy.version,
            kube_proxy_release=kube_proxy_release,
            corefile=corefile.text if corefile else None,
            corefile_source=corefile.source if corefile else None,
            stages=self.stages,
        )
        self.levers = Levers(self.topology)
        self.probes: list[NodeProbe] = []
        self._stack = ExitStack()
        self._warmup_gap_s = 0.8  # warm-up end -> load start; measured by each phase
        self._teardown: Teardown | None = None

    def __enter__(self) -> NetnsCluster:
        self._teardown = self.stages.teardown(self._stack)
        try:
            self._stack.enter_context(self.topology)
            if self.capture_pcap:
                self.captures = PhaseCaptures(self.journal, self.topology.workdir / "pcap")
            if self.run_plan.nodelocal:
                self.levers.enable_nodelocal()
            for node in self.plan.nodes:
                clients = tuple(p.ip for p in self.plan.role("client"))
                probe = NodeProbe(node.name, node.ns, dns_sources=clients)
                self.probes.append(probe)
                self._stack.callback(probe.close)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        cause = exc[1] if len(exc) > 1 and isinstance(exc[1], BaseException) else None
        if self._teardown is not None:
            self._teardown.begin(cause)
        self._stack.close()

    def components(self) -> dict[str, dict[str, str]]:
        """Every upstream component the run used: name -> {version, source}."""
        return self.topology.k8s.components()

    def nodes(self) -> list[str]:
        return [n.name for n in self.plan.nodes]

    # --- phase application -------------------------------------------------------------
    @contextmanager
    def phase(self, plan: PhasePlan) -> Iterator[PhasePlan]:
        """Realize the phase's plan; yield it; revert on exit."""
        # Flush before the remediations too, not only before the load: a remediation that
        # starts a server (NodeLocal's cache forwards through tracked flows) must not start
        # against the previous phase's full table of TIME_WAIT entries.
        self.reset()
        with self.guard.scope(), ExitStack() as undo:
            self._apply_sysctls(plan.sysctls)
            undo.enter_context(self.levers.coredns_as(plan.coredns))
            undo.enter_context(self.levers.nodelocal(plan.nodelocal))
            if plan.fault is not None:
                undo.enter_context(self.levers.race_fault(plan.fault))
            yield plan

    def _apply_sysctls(self, sysctls: SysctlPlan) -> None:
        """Through the guard (reverted when its scope ends): the global max and buckets on
        the host, the per-namespace values in every node."""
        for name, value in sysctls.global_values().items():
            self.guard.set(name, value)
        for name, value in sysctls.per_node:
            for node in self.plan.nodes:
                self.guard.set(name, value, node.ns)

    def apply_node_sysctls(self) -> None:
        self._apply_sysctls(self.run_plan.sysctls)

    def reset(self) -> None:
        self.topology.flush_conntrack()

    # --- load -----------------------------------------------------------------------
    def _worker_plan(self, plan: PhasePlan) -> tuple[WorkerPlan, ResolvConf]:
        """One worker for every client pod, each with the resolv.conf kubelet would write."""
        resolv = plan.pod_dns.resolv_conf(P.DNS_SERVICE_IP, nodelocal_ip=P.NODELOCAL_IP)
        clients = self.plan.role("client")
        for pod in clients:
            self.topology.write_resolv_conf(pod.ns, resolv)
        text = resolv.render()
        wp = worker_plan(
            plan,
            [PodSpec(p.ns, p.ip, text) for p in clients],
            [HTTPTarget(address=P.HTTP_SERVICE_IP, port=80, netns=p.ns) for p in clients],
            locust_target=P.HTTP_SERVICE_IP,
            dns_service_ip=P.DNS_SERVICE_IP,
        )
        return wp, resolv

    def _counters(self, rollout: bool = False) -> tuple[dict[str, dict[str, int]], dict[str, int]]:
        """Node counters (nft, before conntrack and after NAT), and the DNS servers' own view:
        each CoreDNS replica's received (``rx``) and answered (``tx``) from its Prometheus
        metrics (``coredns_dns_requests_total``, ``coredns_dns_responses_total``). In a
        ``rollout`` phase, replicas come and go with their metrics, so every CoreDNS pod's
        nft counters (queries in, answers out, in its own namespace) are read instead."""
        nodes = {n.name: read_counters(n.ns, "cth_obs") for n in self.plan.nodes}
        server: dict[str, int] = {"rx": 0, "tx": 0}
        if rollout:
            counts = {
                p.name: (c.get("rx", 0), c.get("tx", 0))
                for p in self.plan.role("coredns")
                if (c := read_counters(p.ns, "cth_srv"))
            }
        else:
            counts = {
                name: (c.requests, c.responses)
                for name, c in self.topology.k8s.coredns_counts().items()
            }
        for name, (rx, tx) in counts.items():
            server["rx"] += rx
            server["tx"] += tx
            server[f"{name}/rx"] = rx
            server[f"{name}/tx"] = tx
        up = read_counters(self.plan.upstream_ns, "cth_srv")
        server["upstream/rx"] = up.get("rx", 0)
        return nodes, server

    def measure(self, plan: PhasePlan, progress: Progress | None = None) -> PhaseMeasurement:
        self.reset()
        wp, resolv = self._worker_plan(plan)
        wd = self.topology.workdir
        plan_file, out_file = wd / f"{plan.name}.plan.json", wd / f"{plan.name}.out.json"
        out_file.unlink(missing_ok=True)
        cmax = int(sysctl.read(CT + "nf_conntrack_max"))
        steady = self._warm_up(plan, wp, resolv, cmax)
        if plan.events:  # the events' clock: the load begins at a known moment
            wp = dataclasses.replace(wp, start_at_monotonic=time.monotonic() + EVENTS_LEAD_S)
        plan_file.write_text(json.dumps(wp.to_json()))
        nodes0, server0 = self._counters(rollout=plan.rollout is not None or bool(plan.events))
        argv = [
            sys.executable,
            "-m",
            "loadgen.worker",
            "--plan",
            str(plan_file),
            "--out",
            str(out_file),
        ]
        fault = plan.fault
        if fault is not None and fault.pin_cpus and (os.cpu_count() or 1) > 1:
            argv = ["taskset", "-c", "1", *argv]  # DNS servers are on CPU 0
        seen0 = self.levers.race_fault_counters() if fault is not None else {}
        capture = self._pod_capture()
        with (
            capture or nullcontext(),
            self._rolling(plan) as rollout,
            self._endpoint_events(plan) as events,
            self._statsd_counts(plan) as statsd,
            self._kube_proxy_watch() as kp_watch,
        ):
            sampler = Sampler(self.probes, cmax)
            sampler.start()
            # the longest a lookup can take after the last one starts: every attempt times out
            drain = resolv.timeout * resolv.attempts * max(1, len(resolv.nameservers)) + 5
            if rollout is not None:
                rollout.start()
            if events is not None and wp.start_at_monotonic is not None:
                events[0].start(wp.start_at_monotonic)
            proc, series = self._drive_load(
                plan.name,
                argv,
                sampler,
                cmax=cmax,
                duration_s=plan.load.duration_s,
                limit_s=plan.load.duration_s + drain + 30,
                progress=progress,
            )
            if rollout is not None:
                rollout.join()
            if events is not None:
                events[0].join()
                events[1].__exit__(None, None, None)
            if proc.popen.returncode != 0 or not out_file.exists():
                raise BackendError(
                    f"load generator failed ({proc.popen.returncode}): {proc.tail()}"
                )
            self.topology.check_procs()  # a server that died mid-phase voids the measurement
            nodes1, server1 = self._counters(rollout=plan.rollout is not None or bool(plan.events))
        out = json.loads(out_file.read_text())
        seen = Observed()
        if "started_monotonic" in out:  # when the load began, on the sampler's timeline
            seen.load_start_s = round(out.pop("started_monotonic") - sampler.t0, 3)
            seen.steady_state = self._steady_result(
                steady, plan, series, t0=sampler.t0, load_start_s=seen.load_start_s, out=out
            )
        load_start = sampler.t0 + (seen.load_start_s or 0.0)
        if fault is not None:
            seen.fault = fault_result(
                fault, seen0, self.levers.race_fault_counters(), pinned_cpus=fault.pin_cpus
            )
        if capture is not None and self.captures is not None:
            seen.capture = self.captures.reduce(capture, plan.name)
        if rollout is not None and plan.rollout is not None:
            seen.rollout = rollout_result(
                plan.rollout.at_s,
                rollout.events,
                load_start=load_start,
                load_s=plan.load.duration_s,
                timeline=out.get("dns", {}).get("timeline", []),
            )
        if "udp" in out:
            seen.udp = out.pop("udp")
        if events is not None:
            seen.endpoints = self._endpoints_result(
                events,
                load_start=load_start,
                plan=plan,
                udp=seen.udp,
                dns_timeline=out.get("dns", {}).get("timeline", []),
            )
        if statsd is not None and "statsd" in out:
            seen.statsd = self._statsd_result(statsd, out.pop("statsd"), load_start, seen)
        if kp_watch is not None:
            seen.kube_proxy, missing = kp_watch.result(load_start)
            seen.unavailable.update(missing)
        self._keep_phase_evidence(plan.name)
        counters = ({n: delta(nodes0[n], nodes1[n]) for n in nodes1}, delta(server0, server1))
        return PhaseMeasurement.sampled(
            sampler, out, conntrack_max=cmax, resolv=resolv, observed=seen,
            kernel=platform.release(), counters=counters,
        )  # fmt: skip

    # --- steady state (harness.steady.phase) --------------------------------------------
    def _warm_up(
        self,
        plan: PhasePlan,
        wp: WorkerPlan,
        resolv: ResolvConf,
        cmax: int,
    ) -> AgedWarmup:
        """The phase's steady-state model; the aged warm-up brings the table there."""
        tp = self.plan
        clients = tp.role("client")
        client_node = tp.node(clients[0].node).ns
        aged = steady_phase.phase_steady(
            plan.load,
            names=list(wp.dns.plan.names) if wp.dns is not None else [],
            resolv=resolv,
            table_max=cmax,
            timeouts=steady_phase.node_timeouts(client_node),
            known=steady_phase.known_names(tp.cluster_domain, tp.namespace, tp.external_names),
            nodelocal=P.NODELOCAL_IP in resolv.nameservers,
        )
        if aged.wanted:
            targets = WarmupTargets(
                client_ns=tuple(p.ns for p in clients),
                node_ns=tuple(n.ns for n in tp.nodes),
                http_ip=P.HTTP_SERVICE_IP,
                dns_ip=P.DNS_SERVICE_IP,
                dns_name=f"http-server.{tp.namespace}.svc.{tp.cluster_domain}.",
                http_mode=steady_phase.http_mode(plan.load),
            )
            with self.stages.stage("warm-up: the aged fill"):
                aged.run(targets, self.guard, read_ns=client_node, startup_s=self._warmup_gap_s)
        return aged

    def _steady_result(
        self,
        aged: AgedWarmup,
        plan: PhasePlan,
        series: dict[str, NodeSeries],
        *,
        t0: float,
        load_start_s: float,
        out: dict[str, Any],
    ) -> SteadyStateResult:
        res = aged.result(
            series,
            sampler_t0=t0,
            load_start_s=load_start_s,
            duration_s=plan.load.duration_s,
            dns_timeline=out.get("dns", {}).get("timeline", []),
        )
        self._warmup_gap_s = steady_phase.next_startup_s(res, self._warmup_gap_s)
        return res

    @contextmanager
    def _rolling(self, plan: PhasePlan) -> Iterator[RolloutRun | None]:
        """The phase's CoreDNS rollout (None without one); the scenario's replicas are back
        when the phase ends, on every path."""
        if plan.rollout is None:
            yield None
            return
        k8s = self.topology.k8s
        rollout = RolloutRun(k8s, plan.rollout.at_s)
        try:
            yield rollout
        finally:
            rollout.cancel()
            with contextlib.suppress(BackendError):
                rollout.join()
            k8s.undo_rollout()

    @contextmanager
    def _endpoint_events(
        self, plan: PhasePlan
    ) -> Iterator[tuple[EventRun, StaleSampler, set[str]] | None]:
        """The phase's endpoint events and the stale-entry sampler (None without events); the
        phase's CoreDNS replicas are back when the phase ends, on every path."""
        if not plan.events:
            yield None
            return
        k8s = self.topology.k8s
        replicas = k8s.coredns_replicas
        initial = k8s.coredns_ips()
        nodes = [(n.name, n.ns) for n in self.plan.nodes]
        stale = StaleSampler(nodes, P.DNS_SERVICE_IP, 53)
        run_ = EventRun(
            k8s,
            plan.events,
            say=lambda s: self.stages.say(f"event at {s}"),
            read=lambda node: stale.read(self.plan.node(node).ns),
        )
        failed = False
        try:
            with stale:
                yield run_, stale, initial
        except BaseException:
            failed = True
            raise
        finally:
            run_.cancel()
            with contextlib.suppress(BackendError):
                run_.join()
            # the phase's own replicas again; a phase that failed keeps its own error
            with contextlib.suppress(BackendError) if failed else nullcontext():
                k8s.undo_events()
                k8s.set_coredns_replicas(replicas)

    def _endpoints_result(
        self,
        events: tuple[EventRun, StaleSampler, set[str]],
        *,
        load_start: float,
        plan: PhasePlan,
        udp: SamePortResult | None,
        dns_timeline: list[list[float]],
    ) -> EndpointsResult:
        run_, stale, initial = events
        evs: list[EndpointEvent] = []
        for t, event, pod, ip, counts in sorted(run_.events, key=lambda x: x[0]):
            e = EndpointEvent(t_s=round(t - load_start, 3), event=event, pod=pod, ip=ip)
            e.update(counts)  # type: ignore[typeddict-item]
            evs.append(e)
        samples = [(round(t - load_start, 3), node, c) for t, node, c in stale.samples]
        return endpoints_result(
            service="kube-system/kube-dns",
            cluster_ip=P.DNS_SERVICE_IP,
            port=53,
            initial=initial,
            events=evs,
            samples=samples,
            udp_by_pod=udp["by_pod"] if udp is not None else {},
            udp_ports=udp["source_ports"] if udp is not None else {},
            load_s=plan.load.duration_s,
            source=stale.SOURCE,
            dns_timeline=dns_timeline,
        )

    @contextmanager
    def _kube_proxy_watch(self) -> Iterator[KubeProxyWatch | None]:
        """Every node's kube-proxy through the phase: /metrics before and after, RSS and the
        node's conntrack count once a second."""
        k8s = self.topology.k8s
        if all(k8s.kube_proxy_pid(n.name) is None for n in self.plan.nodes):
            yield None  # no kube-proxy runs: nothing to watch
            return
        nodes = [(n.name, n.ns) for n in self.plan.nodes]
        with KubeProxyWatch(nodes, k8s.kube_proxy_pid) as watch:
            yield watch

    @contextmanager
    def _statsd_counts(self, plan: PhasePlan) -> Iterator[StatsdSampler | None]:
        """With a statsd sender: its nft counters on every node and CoreDNS pod, sampled."""
        if plan.load.statsd is None:
            yield None
            return
        nodes = [(n.name, n.ns) for n in self.plan.nodes]
        receivers = [(p.name, p.ns) for p in self.plan.role("coredns")]
        with StatsdSampler(nodes, receivers) as sampler:
            yield sampler

    @staticmethod
    def _statsd_result(
        sampler: StatsdSampler, sender: StatsdResult, load_start: float, seen: Observed
    ) -> StatsdPhase:
        """Where the sender's datagrams went, over the phase and each zero-endpoint window."""
        samples = [(round(t - load_start, 3), n, r) for t, n, r in sampler.samples]
        zero = seen.endpoints["zero_windows"] if seen.endpoints is not None else []
        windows = [(w["judged_from_s"], w["to_s"]) for w in zero]
        return statsd_result(sender, samples, windows, STATSD_SOURCE)

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
        if self.captures is None:
            return None
        return self.captures.capture([(p.name, p.ns) for p in self.plan.role("client")])

    def _keep_phase_evidence(self, phase: str) -> None:
        """This phase's conntrack -S and client resolv.conf, while its remediations hold."""
        label, n = phase, 1
        while label in self.phase_evidence.phase_nodes:  # repeats of a phase
            n += 1
            label = f"{phase}-{n}"
        nodes = self.phase_evidence.phase_nodes.setdefault(label, {})
        for node in self.plan.nodes:
            try:
                stats = run(["conntrack", "-S"], netns=node.ns).stdout
            except HarnessError as e:  # evidence is best effort: the measurement stands
                stats = f"conntrack -S failed: {e}\n"
            nodes[node.name] = {"conntrack-S.txt": stats}
        pods = self.phase_evidence.phase_pods.setdefault(label, {})
        for pod in self.plan.role("client"):
            p = Path("/etc/netns") / pod.ns / "resolv.conf"
            if p.exists():
                pods[pod.name] = p.read_text()

    def evidence(self) -> Evidence:
        """Per-node iptables-save, conntrack -S and nft ruleset, per-pod resolv.conf: for bug
        bundles. Each phase's conntrack -S and resolv.conf; with --pcap, each phase's
        unanswered same-port pairs."""
        ev = Evidence(
            pcaps=dict(self.captures.pcaps) if self.captures else {},
            phase_pods={k: dict(v) for k, v in self.phase_evidence.phase_pods.items()},
            phase_nodes={k: dict(v) for k, v in self.phase_evidence.phase_nodes.items()},
        )
        for node in self.plan.nodes:
            ev.nodes[node.name] = {
                "iptables-save.txt": run(["iptables-save"], netns=node.ns).stdout,
                "conntrack-S.txt": run(["conntrack", "-S"], netns=node.ns).stdout,
                "nft-ruleset.txt": run(["nft", "list", "ruleset"], netns=node.ns).stdout,
            }
        self.topology.k8s.add_evidence(ev)  # kube-proxy's rules, Corefiles, CoreDNS metrics
        for pod in self.plan.role("client"):
            p = Path("/etc/netns") / pod.ns / "resolv.conf"
            if p.exists():
                ev.pods[pod.name] = p.read_text()
        return ev
