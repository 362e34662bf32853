"""The runner's :class:`harness.backends.base.Cluster` on a real cluster (kind, kubeconfig).

:class:`KubeRunCluster` enters a backend's ``realize`` (the workload of :mod:`.cluster`),
applies each phase through :meth:`KubeCluster.phase`, and measures a phase the way the netns
backend does: the load worker runs in every client pod at once while each node's conntrack
count and stat counters are sampled (:mod:`.sampling`), and the pods' answers are merged into
one :class:`harness.measurement.PhaseMeasurement`, so result.json has the same shape on every
backend. What a cluster cannot give (the DNS pods' own received/answered counters, the nodes'
DNS packet counters) is reported as 0 and named in ``Observed.unavailable``.

Before each phase's load, after the nodes' tables were flushed, the aged warm-up
(:mod:`harness.steady.warmup`, the netns backend's own) brings the tables to the load's steady state
where the model asks for it and the nodes' and client pods' network namespaces are this
host's (kind: :meth:`.nodeaccess.DockerNodeAccess.netns`, ``pod_netns``); it sets the nodes'
timeouts through the runner's journaled guard.
"""

from __future__ import annotations

import functools
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from pathlib import Path
from typing import Any, Protocol

from cthcommon.errors import BackendError
from cthcommon.resolvconf import ResolvConf
from harness.backends.base import Progress
from harness.backends.kube import components as parts
from harness.backends.kube.cluster import KubeCluster
from harness.backends.kube.loadmerge import merge_loads
from harness.backends.kube.names import HTTP_SERVER_NAME
from harness.backends.kube.placement import NodeMap
from harness.backends.kube.podplans import ClientTarget
from harness.backends.kube.podworker import START_IN_S, Handle
from harness.backends.kube.sampling import KernelLog, KubeSampler
from harness.capture.tcpdump import PhaseCaptures, PodCapture
from harness.kernel.journal import Journal
from harness.kernel.kmsg import KmsgReader
from harness.kernel.kubeproxywatch import KubeProxyWatch
from harness.kernel.process import pin_threads
from harness.kernel.sampler import ConntrackSampler, NodeProbe, Sampler
from harness.measurement import Observed, PhaseMeasurement
from harness.plan.types import PhasePlan, RunPlan
from harness.results.evidence import Evidence
from harness.results.fault import fault_result
from harness.steady import phase as steady
from harness.steady.warmup import AgedWarmup, SysctlSetter, WarmupTargets
from loadgen.worker import WorkerResult

SERVER_COUNTERS_UNAVAILABLE = (
    "the DNS pods' own received/answered counts are not read on this backend "
    "(server.received/answered read 0: not measured)"
)
KUBE_PROXY_UNAVAILABLE = (
    "kube-proxy's metrics, RSS and reconciles are read where its node shares this host's "
    "kernel (netns, kind); this cluster's kube-proxy is not on this host"
)
NODE_DNS_COUNTERS_UNAVAILABLE = (
    "per-node DNS packet counters (dns_in/dns_out) are not installed on cluster nodes "
    "(node.dns_* and agreement.node_dropped read 0: not measured)"
)
# Every pod's worker begins its load at one moment: launched first, each says when it is
# ready (a ``kubectl exec`` and the worker's start take 1.9-2.8 s here), and after the aged
# warm-up one cue starts them all (:mod:`.podworker`). Started one by one, the pods' loads were
# staggered by up to a second and the table filled seconds into the phase.
WORKERS_READY_S = 120.0  # launch -> every worker ready, at most (an image pull is not waited)
# warm-up end -> load start before a phase has measured it (each phase then uses the gap the
# last one measured): the sampler's start and the cue's lead
WARMUP_GAP_S = START_IN_S + 0.3
ANSWER_BUDGET_S = 120.0  # after the load's end, for the workers' drains and answers
CLOCK_SLACK_S = 5.0  # a pod's load start this far from the cue: its clock is not this host's
NODE_NS_HZ = 10.0  # nodes read in their own namespaces (kind): as often as netns's


class Realizer(Protocol):
    """A kube backend: :class:`.kind.KindBackend`, :class:`.kubeconfig.KubeconfigBackend`, ..."""

    name: str

    def realize(self, plan: RunPlan, run_id: str) -> AbstractContextManager[KubeCluster]: ...


def host_kernel_log() -> KernelLog | None:
    """This host's /dev/kmsg (kind nodes share its kernel); None when not readable."""
    reader = KmsgReader()
    return reader if reader.available else None


def series_labels(nodes: NodeMap) -> dict[str, str]:
    """label -> real node: each scenario node has its own real node, so its scenario name."""
    return {label: nodes.nodes[label] for label in sorted(nodes.nodes)}


def forgotten_notes(forgotten: dict[str, int | None]) -> list[str]:
    """What an existing cluster's nodes forgot of the run's earlier flows before the phase, in
    words (pure; none on kind, whose nodes' tables are flushed)."""
    if not forgotten:
        return []
    if any(n is None for n in forgotten.values()):
        return [
            "the run's earlier flows were not deleted from the nodes' tables before the phase "
            "(the node probe is unprivileged; --allow-disruptive deletes them): a phase after "
            "the first starts on what the phases before it left"
        ]
    counts = ", ".join(f"{node} {n}" for node, n in sorted(forgotten.items()))
    return [
        f"before the phase the nodes deleted the run's own earlier flows ({counts} entries: "
        "from its client pods, to its HTTP server); the cluster's other flows were kept"
    ]


class KubeRunCluster:
    """A realized Kubernetes workload, driven by the runner (the ``Cluster`` protocol)."""

    def __init__(
        self,
        realizer: Realizer,
        plan: RunPlan,
        run_id: str,
        *,
        kernel_log: Callable[[], KernelLog | None] = lambda: None,
        sample_hz: float = 1.0,
        guard: SysctlSetter | None = None,
        journal: Journal | None = None,
        capture_pcap: bool = False,
    ) -> None:
        """``guard``: the runner's journaled sysctl guard, for the aged warm-up's timeouts in
        the nodes (None: no warm-up; kubeconfig's nodes are not this host's). ``journal`` and
        ``capture_pcap``: ``--pcap``, tcpdump in the client pods' namespaces (kind: this
        host's), each process journaled so that ``restore`` can stop it."""
        self.backend = realizer.name
        self.plan = plan
        self.run_id = run_id
        self._realizer = realizer
        self._kernel_log = kernel_log
        self._period = 1.0 / sample_hz
        self._stack = ExitStack()
        self._kc: KubeCluster | None = None
        self._evidence = Evidence()
        self._guard = guard
        self._warmup_gap_s = WARMUP_GAP_S
        self._journal = journal
        self._capture_pcap = capture_pcap
        self.captures: PhaseCaptures | None = None

    @property
    def kube(self) -> KubeCluster:
        if self._kc is None:
            raise BackendError("the cluster is not realized (use it as a context manager)")
        return self._kc

    def __enter__(self) -> KubeRunCluster:
        try:
            if self._capture_pcap and self._journal is not None:
                tmp = self._stack.enter_context(tempfile.TemporaryDirectory(prefix="cth-pcap-"))
                self.captures = PhaseCaptures(self._journal, Path(tmp))
            self._kc = self._stack.enter_context(self._realizer.realize(self.plan, self.run_id))
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._kc = None
        self._stack.close()

    def components(self) -> dict[str, dict[str, str]]:
        """result.json's ``environment.components``: the versions of the cluster's parts, read
        from the live cluster (:mod:`.components`); what cannot be read says why."""
        return parts.read(self.kube.settings.api, self._realizer)

    def reset(self) -> None:
        """Flush the nodes' conntrack tables (measure() also does this before each phase)."""
        self.kube.reset()

    def nodes(self) -> list[str]:
        return self.kube.nodes()

    def apply_node_sysctls(self) -> None:
        """Nothing left to do: realizing the workload already applied the scenario's
        node_sysctls to every node (the node tuner) and its host sysctls (the runner's guard),
        for the whole run; both are reverted when the cluster exits."""

    @contextmanager
    def phase(self, plan: PhasePlan) -> Iterator[PhasePlan]:
        with self.kube.phase(plan) as realized:
            yield realized

    # --- measuring ---------------------------------------------------------------------
    def _dns_servers(self) -> list[int]:
        """Host PIDs of every CoreDNS process in the nodes (the cluster's and NodeLocal's),
        for ``pin_cpus``; none when the nodes are not this host's or it has one CPU."""
        if (os.cpu_count() or 1) < 2:
            return []
        access = self.kube.settings.access
        return sorted({p for n in self.kube.real_nodes() for p in access.host_pids(n, "coredns")})

    def _client_node(self) -> str:
        return self.kube.node_map.real(self.plan.cluster.client_node)

    def _kube_proxy_watch(self, labels: dict[str, str]) -> KubeProxyWatch | None:
        """Every node's kube-proxy through the phase, as on netns (label -> real node in
        ``labels``): where the nodes share this kernel (kind) and a kube-proxy runs there."""
        access = self.kube.settings.access
        nodes = [(label, access.netns(real)) for label, real in labels.items()]

        def pid_of(label: str) -> int | None:
            pids = access.host_pids(labels[label], "kube-proxy")
            return min(pids) if pids else None

        if any(ns is None for _, ns in nodes) or all(pid_of(label) is None for label in labels):
            return None
        return KubeProxyWatch([(label, ns) for label, ns in nodes if ns is not None], pid_of)

    def _kernel(self) -> str:
        kc = self.kube
        obj = kc.settings.api.get("v1", "Node", self._client_node()) or {}
        return str(obj.get("status", {}).get("nodeInfo", {}).get("kernelVersion", ""))

    def measure(self, plan: PhasePlan, progress: Progress | None = None) -> PhaseMeasurement:
        kc = self.kube
        access = kc.settings.access
        forgotten = kc.reset()
        targets = kc.client_targets()
        plans = kc.worker_plans(targets, plan)
        for t in targets:
            self._evidence.phase_pods.setdefault(plan.name, {})[t.pod] = t.resolv
        labels = series_labels(kc.node_map)
        cmax = int(access.stat(next(iter(labels.values())))["max"])
        resolv = ResolvConf.parse(targets[0].resolv)
        dns = plans[0].dns
        cluster = self.plan.cluster
        aged = steady.phase_steady(
            plan.load,
            names=list(dns.plan.names) if dns is not None else [],
            resolv=resolv,
            table_max=cmax,
            timeouts=access.timeouts(self._client_node()),
            known=steady.known_names(
                cluster.cluster_domain, kc.settings.namespace, cluster.external_names
            ),
            nodelocal=plan.nodelocal,
        )
        fault = plan.fault
        servers = self._dns_servers() if fault is not None and fault.pin_cpus else []
        cpus = "1" if servers else None
        with ExitStack() as launched:
            workers: list[Handle] = []
            for p in plans:
                workers.append(kc.launch_worker(p, cpus))
                launched.callback(workers[-1].stop)
            deadline = time.monotonic() + WORKERS_READY_S
            for w in workers:
                w.wait_ready(deadline)
            # the client pods' namespaces: looked up once a phase, by the first that needs them
            pod_ns = functools.cache(lambda: self._pod_netns(targets))
            natural = self._warm_up(aged, plan, targets, pod_ns)
            fault0 = kc.fault_counters() if fault is not None else {}
            sampler, probes, hz = self._sampler(labels, cmax, targets)
            if servers:
                pin_threads(servers, {0})  # as on netns: the A answer cannot overtake the AAAA
            capture = self._pod_capture(targets, pod_ns)
            kp_watch = self._kube_proxy_watch(labels)
            try:
                with capture or nullcontext(), kp_watch or nullcontext():
                    sampler.start()
                    answers, cued = self._drive(
                        plan, workers, sampler=sampler, progress=progress, cmax=cmax
                    )
            finally:
                for probe in probes:
                    probe.close()
                if servers:
                    pin_threads(servers, set(range(os.cpu_count() or 1)))
        series = sampler.series
        merged, notes = merge_loads(answers)
        started = [float(a["started_monotonic"]) for a in answers if "started_monotonic" in a]
        if any(abs(t - cued) > CLOCK_SLACK_S for t in started):
            # the pods' clocks are not this host's (a real node's): the load began on the cue
            notes.append(
                "the load start is the harness's cue: the pods' monotonic clocks are not this "
                "host's"
            )
            started = [cued]
        load_start_s = steady.load_start(started, sampler.t0)
        seen = Observed(
            unavailable={
                "server_counters": SERVER_COUNTERS_UNAVAILABLE,
                "node_dns_counters": NODE_DNS_COUNTERS_UNAVAILABLE,
                **access.limits(),
            },
            sample_hz=round(hz, 3),
            notes=[*notes, *sampler.notes, *forgotten_notes(forgotten)],
        )
        if fault is not None:
            after = kc.fault_counters()
            seen.fault = fault_result(fault, fault0, after, pinned_cpus=bool(servers))
            if not after:
                seen.unavailable["fault_hits"] = (
                    "the fault table's counters could not be read on these nodes (nft list "
                    "table failed in the node probe); hits read 0"
                )
            if fault.pin_cpus and not servers:
                seen.notes.append(
                    "pin_cpus is not applied: the DNS servers' processes are not on this host "
                    "(an existing cluster's nodes) or it has one CPU"
                )
        if kp_watch is not None:
            seen.kube_proxy, missing = kp_watch.result(sampler.t0 + (load_start_s or 0.0))
            seen.unavailable.update(missing)
        else:
            seen.unavailable["kube_proxy"] = KUBE_PROXY_UNAVAILABLE
        if capture is not None and self.captures is not None:
            seen.capture = self.captures.reduce(capture, plan.name)
        elif self.captures is not None:
            seen.notes.append(
                "--pcap: nothing captured: the client pods' network namespaces were not found "
                "on this host"
            )
        if load_start_s is not None:
            seen.load_start_s = load_start_s
            result = aged.result(
                series,
                sampler_t0=sampler.t0,
                load_start_s=load_start_s,
                duration_s=plan.load.duration_s,
                dns_timeline=merged.get("dns", {}).get("timeline", []),
                natural=natural,
            )
            self._warmup_gap_s = steady.next_startup_s(result, self._warmup_gap_s)
            seen.steady_state = result
        # no node or server counters here (observed.unavailable says why)
        return PhaseMeasurement.sampled(
            sampler, merged, conntrack_max=cmax, resolv=resolv, observed=seen,
            kernel=self._kernel(),
        )  # fmt: skip

    def _warm_up(
        self,
        aged: AgedWarmup,
        plan: PhasePlan,
        targets: list[ClientTarget],
        pod_ns: Callable[[], dict[str, str]],
    ) -> str:
        """Warm the nodes' tables up to the phase's steady state when its model asks for it
        (:class:`harness.steady.warmup.AgedWarmup`): real flows from the client pods' namespaces,
        the nodes' timeouts set in theirs. Returns the label a natural start gets: without
        the warm-up, why."""
        plain = "natural: no warm-up"
        if not aged.wanted:
            return plain
        if self._guard is None:
            return steady.no_warmup_on(self.backend)
        kc = self.kube
        access = kc.settings.access
        nodes = {n: access.netns(n) for n in kc.real_nodes()}
        client = self._client_node()
        pods = pod_ns()
        lost = [n for n, h in nodes.items() if h is None] + [
            t.pod for t in targets if t.ip not in pods
        ]
        if lost:
            return steady.natural_label(
                f"the network namespaces of {', '.join(sorted(lost))} were not found on this "
                "host, so the aged warm-up could not run"
            )
        node_ns = {n: h for n, h in nodes.items() if h is not None}
        domain = self.plan.cluster.cluster_domain
        warm = WarmupTargets(
            client_ns=tuple(pods[t.ip] for t in targets),
            node_ns=tuple(node_ns.values()),
            http_ip=kc.http_service_ip(),
            dns_ip=kc.kube_dns_ip,
            dns_name=f"{HTTP_SERVER_NAME}.{kc.settings.namespace}.svc.{domain}.",
            http_mode=steady.http_mode(plan.load),
        )
        aged.run(warm, self._guard, read_ns=node_ns[client], startup_s=self._warmup_gap_s)
        return plain

    def _pod_netns(self, targets: list[ClientTarget]) -> dict[str, str]:
        """Client pod IP -> its network namespace on this host (kind: below its node
        container's init), for the pods found; the client node's pods are looked for first."""
        kc = self.kube
        access = kc.settings.access
        client = self._client_node()
        pods: dict[str, str] = {}
        for n in sorted(kc.real_nodes(), key=lambda n: n != client):
            missing = {t.ip for t in targets} - set(pods)
            if missing:
                pods.update(access.pod_netns(n, missing))
        return pods

    def _pod_capture(
        self, targets: list[ClientTarget], pod_ns: Callable[[], dict[str, str]]
    ) -> PodCapture | None:
        """With --pcap: tcpdump in every client pod's namespace for the phase (None: off, or
        a pod's namespace is not this host's)."""
        if self.captures is None:
            return None
        pods = pod_ns()
        if any(t.ip not in pods for t in targets):
            return None
        return self.captures.capture([(t.pod, pods[t.ip]) for t in targets])

    def _sampler(
        self, labels: dict[str, str], cmax: int, targets: list[ClientTarget]
    ) -> tuple[ConntrackSampler, list[NodeProbe], float]:
        """The phase's sampler, its namespace probes (closed after the phase) and its rate.
        Where the nodes' namespaces are this host's (kind), they are read as netns's are:
        descriptors held open in each (a pread), by a thread at :data:`NODE_NS_HZ`; else one
        command per node and round (``kubectl exec`` into the probe pod), once a second."""
        access = self.kube.settings.access
        handles = {label: access.netns(real) for label, real in labels.items()}
        probes: list[NodeProbe] = []
        note = None
        if all(handles.values()):
            clients = tuple(t.ip for t in targets)
            try:
                for label, ns in handles.items():
                    assert ns is not None
                    probes.append(NodeProbe(label, ns, dns_sources=clients))
            except OSError as e:  # the node is gone, or not readable from here
                for probe in probes:
                    probe.close()
                note = f"the nodes were sampled by command, not in their namespaces ({e})"
            else:
                ns_sampler = Sampler(probes, cmax, NODE_NS_HZ, kernel_log=self._kernel_log)
                return ns_sampler, probes, NODE_NS_HZ
        sampler = KubeSampler(access, labels, cmax, kernel_log=self._kernel_log)
        if note:
            sampler.notes.append(note)
        return sampler, [], 1.0 / self._period

    def _drive(
        self,
        plan: PhasePlan,
        workers: list[Handle],
        *,
        sampler: ConntrackSampler,
        progress: Progress | None,
        cmax: int,
    ) -> tuple[list[WorkerResult], float]:
        """Cue every pod's worker at once; sample the nodes until they all answer. Returns
        their answers and when, on this host's clock, the load was cued to begin."""
        duration_s = plan.load.duration_s
        cued = time.monotonic() + START_IN_S
        for w in workers:
            w.go(START_IN_S)
        deadline = cued + duration_s + ANSWER_BUDGET_S
        try:
            while True:
                # a background thread samples (Sampler), or each round here does
                live = sampler.live() if isinstance(sampler, Sampler) else sampler.sample()
                codes = [w.returncode() for w in workers]
                if progress:
                    elapsed = min(sampler.duration, duration_s)
                    info: dict[str, Any] = {"conntrack": live, "max": cmax}
                    if sampler.duration >= duration_s:  # the load is over: who is left
                        info["waiting"] = sum(c is None for c in codes)
                    progress(plan.name, elapsed, duration_s, info)
                if None not in codes or any(c not in (None, 0) for c in codes):
                    break  # all answered, or one failed: its error ends the phase
                if time.monotonic() > deadline:
                    break  # result() below says who did not answer
                time.sleep(self._period)
        finally:
            sampler.stop()
        return [w.result(max(1.0, deadline - time.monotonic())) for w in workers], cued

    def evidence(self) -> Evidence:
        """Per node: conntrack -S / iptables-save where reachable; per phase and pod: the
        resolv.conf the load ran with."""
        access = self.kube.settings.access
        nodes = {node: access.evidence(node) for node in self.kube.real_nodes()}
        pcaps = dict(self.captures.pcaps) if self.captures is not None else {}
        return Evidence(nodes=nodes, phase_pods=dict(self._evidence.phase_pods), pcaps=pcaps)
