"""The realized workload on a real cluster, shared by the kind and kubeconfig backends.

:func:`realize_workload` builds the run's namespace, HTTP server, CoreDNS baseline, scenario
node sysctls and NodeLocal DNSCache, and undoes each on exit (an ``ExitStack`` of undos, run on
every path). :meth:`KubeCluster.phase` does the same for one phase: host sysctls, the node
tuner (sysctls + injected fault), CoreDNS changes, NodeLocal DNSCache, and the client pods that
carry the phase's dnsConfig.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from cthcommon.errors import BackendError
from harness.backends.kube import coredns, nodelocaldns, readiness, tuner, workload
from harness.backends.kube.commands import kubectl_exec
from harness.backends.kube.counters import NodeStat
from harness.backends.kube.dnsconfig import NamespaceMap, pod_dns
from harness.backends.kube.hostsysctl import HostSysctls, phase_host_sysctls, run_host_sysctls
from harness.backends.kube.names import (
    COREDNS_CONFIGMAP,
    COREDNS_DEPLOYMENT,
    HTTP_SERVER_IMAGE,
    HTTP_SERVER_NAME,
    KUBE_DNS_SERVICE,
    LABEL_PHASE,
    LABEL_ROLE,
    NODELOCAL_IMAGE,
    NODELOCAL_NAME,
    NODELOCAL_UPSTREAM_SERVICE,
    SYSTEM_NAMESPACE,
    TUNER_PREFIX,
    run_namespace,
    run_selector,
)
from harness.backends.kube.placement import NodeMap
from harness.backends.kube.podplans import ClientTarget, client_image, pod_worker_argv, worker_plans
from harness.backends.kube.podworker import Handle, PodWorker, RunnerWorker
from harness.backends.kube.proc import Runner, subprocess_runner
from harness.dataplane import nodelocal
from harness.dataplane.faults import sum_node_counters
from harness.kubeapi.client import KubeAPI, ref
from harness.kubeapi.wait import wait_for
from harness.plan.types import CoreDNSPlan, PhasePlan, RunPlan
from harness.steady.model import Timeouts
from loadgen.worker import WorkerPlan

Manifest = dict[str, Any]

# what realize_workload does before the first phase, in words (a setup step's progress line)
WORKLOAD_STAGE = "the run's workload (namespace, CoreDNS, HTTP server, node sysctls) Ready"


class NodeAccess(Protocol):
    """How a backend reaches a node's own network namespace. ``flushes``: a phase starts on
    the node's flushed table (kind's nodes are the run's own); else the node forgets only
    the run's own flows (:meth:`forget`), an existing cluster's others' never."""

    flushes: bool

    def stat(self, node: str) -> NodeStat: ...

    def flush(self, node: str) -> None: ...

    def forget(
        self, node: str, sources: Collection[str], destinations: Collection[str]
    ) -> int | None: ...

    def timeouts(self, node: str) -> Timeouts: ...

    def host_pids(self, node: str, comm: str) -> list[int]: ...

    def netns(self, node: str) -> str | None: ...

    def pod_netns(self, node: str, ips: Collection[str]) -> dict[str, str]: ...

    def fault_counters(self, node: str, table: str) -> dict[str, int]: ...

    def listing(self, node: str) -> str: ...

    def netns_inode(self, node: str) -> int | None: ...

    def evidence(self, node: str) -> dict[str, str]: ...

    def limits(self) -> dict[str, str]:
        """What this access cannot measure, per feature (result.json ``unavailable``)."""
        ...


@dataclass(frozen=True)
class Images:
    glibc: str
    musl: str
    http_server: str = HTTP_SERVER_IMAGE
    nodelocal: str = NODELOCAL_IMAGE
    # where node-cache's image cannot be had (kind's air-gapped Docker): the CoreDNS image
    # that runs node-cache's Corefile instead (harness.backends.kube.nodelocaldns.StandIn)
    nodelocal_stand_in: str | None = None

    @property
    def tuner(self) -> str:
        return self.glibc  # Debian: sh + nft, which the tuner script needs


@dataclass
class Settings:
    backend: str
    run_id: str
    plan: RunPlan
    api: KubeAPI
    runner: Runner
    kubeconfig: str | None
    images: Images
    access: NodeAccess
    host: HostSysctls | None  # None: global sysctls go through the tuner (real nodes)
    timeout_s: float = 300.0
    # kind: place CoreDNS, serve external names, set scenario cache/replicas. An existing
    # cluster's CoreDNS is left as found unless disruptive changes are allowed.
    coredns_baseline: bool = True
    # False: the run's namespace is deleted without waiting for it to be gone (kind, where
    # nothing left in it by then touches a node; the kubeconfig backend waits on the
    # user's cluster)
    wait_namespace_gone: bool = True
    clock_now: Callable[[], str] = field(default=lambda: datetime.now(UTC).isoformat())

    @property
    def namespace(self) -> str:
        return run_namespace(self.run_id)

    @property
    def tuner_sets_globals(self) -> bool:
        return self.host is None


API_POLL_S = 0.25  # how often a wait asks the cluster's API (a user's cluster too)


PULL_POLL_S = 2.0  # how often a wait looks for pods whose image cannot be had


def pull_watch(api: KubeAPI, namespace: str) -> Callable[[], str | None]:
    """A wait's ``stuck`` check: why a pod in ``namespace`` cannot get its image, if one
    cannot (:class:`readiness.PullWatch`; the pods are listed every :data:`PULL_POLL_S`)."""
    watch, last = readiness.PullWatch(), [float("-inf")]

    def stuck() -> str | None:
        now = time.monotonic()
        if now - last[0] < PULL_POLL_S:
            return None
        last[0] = now
        return watch(api.list("v1", "Pod", namespace), now)

    return stuck


def _wait(s: Settings, what: str, check: Callable[[], str | None], *, pulls: bool = True) -> None:
    """Wait for ``check``; give up early when a pod of the run cannot get its image (not
    while waiting for deletions, ``pulls`` False: a pod that never started is going too)."""
    stuck = pull_watch(s.api, s.namespace) if pulls else None
    wait_for(what, check, timeout_s=s.timeout_s, interval_s=API_POLL_S, stuck=stuck)


def _apply_all(
    s: Settings,
    stack: ExitStack,
    objs: list[Manifest],
    *,
    wait_gone: bool = False,
    each_ready: Callable[[Manifest], None] | None = None,
) -> None:
    """Apply ``objs`` in order (with ``each_ready``, waiting for each before the next); on
    exit delete them all (in reverse), then, with ``wait_gone``, wait until every one is gone:
    the deletions run together, not one object's grace period after another's. An object
    whose apply failed is not deleted; a failed delete does not stop the others (the first
    failure is raised after them)."""
    applied: list[tuple[str, str, str, str | None]] = []
    stack.callback(_delete_all, s, applied, wait_gone)
    for obj in objs:
        s.api.apply(obj)
        applied.append(ref(obj))
        if each_ready is not None:
            each_ready(obj)


def _delete_all(s: Settings, refs: list[tuple[str, str, str, str | None]], wait_gone: bool) -> None:
    failed: BackendError | None = None
    for api_version, kind, name, ns in reversed(refs):
        try:
            s.api.delete(api_version, kind, name, ns)
        except BackendError as e:
            failed = failed or e
    if wait_gone:
        _wait_gone(s, refs)
    if failed is not None:
        raise failed


def _wait_gone(s: Settings, refs: list[tuple[str, str, str, str | None]]) -> None:
    """Wait until every object of ``refs`` is gone (their deletion asked before)."""
    if not refs:
        return
    what = ", ".join(f"{kind}/{name}" for _, kind, name, _ in refs)

    def left() -> str | None:
        present = [f"{k}/{n}" for a, k, n, ns in refs if s.api.get(a, k, n, ns) is not None]
        return f"still present: {', '.join(present)}" if present else None

    _wait(s, f"{what} to be deleted", left, pulls=False)


def kube_dns_ip(api: KubeAPI) -> str:
    svc = api.get("v1", "Service", KUBE_DNS_SERVICE, SYSTEM_NAMESPACE)
    ip = (svc or {}).get("spec", {}).get("clusterIP")
    if not ip or ip == "None":
        raise BackendError("the cluster has no kube-system/kube-dns Service with a ClusterIP")
    return str(ip)


def _ds_ready(s: Settings, name: str, ns: str) -> None:
    _wait(
        s,
        f"DaemonSet {ns}/{name}",
        lambda: readiness.daemonset_not_ready(s.api.get("apps/v1", "DaemonSet", name, ns)),
    )


class CoreDNSState:
    """The live CoreDNS as found, so every change can be put back verbatim."""

    def __init__(self, s: Settings) -> None:
        cm = s.api.get("v1", "ConfigMap", COREDNS_CONFIGMAP, SYSTEM_NAMESPACE)
        dep = s.api.get("apps/v1", "Deployment", COREDNS_DEPLOYMENT, SYSTEM_NAMESPACE)
        if cm is None or dep is None or "Corefile" not in (cm.get("data") or {}):
            raise BackendError(
                "kube-system has no coredns ConfigMap (with a Corefile) and Deployment"
            )
        self.corefile: str = cm["data"]["Corefile"]
        self.deployment: dict[str, Any] = dep

    def apply(self, s: Settings, settings: CoreDNSPlan, selector: Mapping[str, str] | None) -> None:
        text = coredns.render_corefile(self.corefile, settings, s.plan.cluster.external_names)
        s.api.patch(
            "v1", "ConfigMap", COREDNS_CONFIGMAP, SYSTEM_NAMESPACE, coredns.configmap_patch(text)
        )
        s.api.patch(
            "apps/v1",
            "Deployment",
            COREDNS_DEPLOYMENT,
            SYSTEM_NAMESPACE,
            coredns.deployment_patch(settings.replicas, selector, s.clock_now()),
        )
        self.wait(s)

    def restore(self, s: Settings) -> None:
        s.api.patch(
            "v1",
            "ConfigMap",
            COREDNS_CONFIGMAP,
            SYSTEM_NAMESPACE,
            coredns.configmap_patch(self.corefile),
        )
        s.api.patch(
            "apps/v1",
            "Deployment",
            COREDNS_DEPLOYMENT,
            SYSTEM_NAMESPACE,
            coredns.deployment_restore_patch(self.deployment, s.clock_now()),
        )
        self.wait(s)

    @staticmethod
    def wait(s: Settings) -> None:
        _wait(
            s,
            "CoreDNS rollout",
            lambda: readiness.deployment_not_ready(
                s.api.get("apps/v1", "Deployment", COREDNS_DEPLOYMENT, SYSTEM_NAMESPACE)
            ),
        )


class KubeCluster:
    """A realized cluster (the :class:`harness.backends.base.Cluster` protocol)."""

    def __init__(self, s: Settings, nodes: NodeMap, dns_ip: str, core: CoreDNSState) -> None:
        self.backend = s.backend
        self.settings = s
        self.node_map = nodes
        self.kube_dns_ip = dns_ip
        self._core = core
        self._nsmap = NamespaceMap(
            s.plan.cluster.namespace, s.namespace, s.plan.cluster.cluster_domain
        )
        self._plan: PhasePlan | None = None
        # the client pods, kept from phase to phase while their spec is the same (as netns
        # keeps its pods): replaced when a phase needs others, and deleted at the end. Each
        # set has its own names (``_clients_gen``), so the next set starts while the last one
        # terminates
        self._client_refs: list[tuple[str, str, str, str | None]] = []
        self._clients_spec: str | None = None
        self._clients_gen = 0
        # the phase's node tuners, kept likewise while the next phase asks the same of the
        # nodes (the same sysctls, the same fault on the same nodes): race.yaml's six phases
        # share one fault, which was made and deleted six times
        self._tuners_stack = ExitStack()
        self._tuners_key: str | None = None
        # an existing cluster's nodes: the run's client pod IPs so far (:meth:`reset`)
        self._client_ips: set[str] = set()

    def nodes(self) -> list[str]:
        return self.settings.plan.cluster.node_names()

    def real_nodes(self) -> list[str]:
        return sorted(set(self.node_map.nodes.values()))

    # --- phases ---------------------------------------------------------------------------
    @contextmanager
    def phase(self, plan: PhasePlan) -> Iterator[PhasePlan]:
        """Realize the phase's plan; yield it; undo on exit."""
        s = self.settings
        with ExitStack() as stack:
            self._host_phase(stack, plan)
            self._tuner_phase(plan)
            self._coredns_phase(stack, plan)
            if plan.nodelocal and not s.plan.nodelocal:
                install_nodelocal(s, stack, self.kube_dns_ip, self.node_map)
            self._clients(stack, plan)
            self._plan = plan
            stack.callback(setattr, self, "_plan", None)
            yield plan

    def _host_phase(self, stack: ExitStack, plan: PhasePlan) -> None:
        host = self.settings.host
        wanted = phase_host_sysctls(plan)
        if host is None or not wanted:
            return
        for name, value in wanted.items():
            before = host.get(name)
            host.set(name, value)
            stack.callback(host.set, name, before)

    def _tuner_phase(self, plan: PhasePlan) -> None:
        """The phase's sysctls on every node; the injected fault's table only on the nodes
        the plan names (its own DaemonSet, which changes no sysctl). Kept after the phase
        until a phase asks something else of the nodes, or the run ends (:meth:`drop_tuners`):
        the fault's counters are read as deltas over each phase."""
        s = self.settings
        sysctls, ruleset = tuner.phase_changes(plan, s.run_id, include_global=s.tuner_sets_globals)
        fault_nodes = sorted(plan.fault.nodes) if ruleset is not None and plan.fault else None
        key = json.dumps([sorted(sysctls.items()), ruleset, fault_nodes])
        if key == self._tuners_key:
            return  # the last phase's tuners, Ready and unchanged since: kept
        self.drop_tuners()  # the last phase's put the nodes back first
        stack = self._tuners_stack
        base = f"{TUNER_PREFIX}-{plan.name}".replace("_", "-")
        sets: list[tuple[str, Manifest]] = []
        if sysctls:
            name = base[:63].rstrip("-_")
            ds = tuner.daemonset(
                s.run_id,
                s.namespace,
                name,
                sysctls=sysctls,
                nodes=self.node_map,
                image=s.images.tuner,
            )
            sets.append((name, ds))
        if ruleset is not None and plan.fault is not None:
            name = f"{base[:57]}-fault".replace("--", "-")
            ds = tuner.daemonset(
                s.run_id,
                s.namespace,
                name,
                sysctls={},
                nodes=self.node_map.only(plan.fault.nodes),
                image=s.images.tuner,
                ruleset=ruleset,
                table=tuner.fault_table(s.run_id),
            )
            sets.append((name, ds))
        # one after the other, the sysctls' tuner first: loading the fault's table turns
        # nf_conntrack_acct on by itself (the kernel does for nft's ct packet counters), so the
        # sysctls' tuner must have saved the node's own value before (else it saves the 1 and
        # "restores" it: measured, a kept cluster's node left with accounting on)
        _apply_all(
            s,
            stack,
            [ds for _, ds in sets],
            wait_gone=True,
            each_ready=lambda ds: _ds_ready(s, ds["metadata"]["name"], s.namespace),
        )
        self._tuners_key = key  # only once all are Ready: a failed set is never "kept"

    def _coredns_phase(self, stack: ExitStack, plan: PhasePlan) -> None:
        s = self.settings
        base = s.plan.coredns
        if plan.coredns == base:
            return
        sel = coredns_selector(s.plan, self.node_map)
        self._core.apply(s, plan.coredns, sel)
        stack.callback(self._core.apply, s, base, sel)

    def _clients(self, stack: ExitStack, plan: PhasePlan) -> None:
        s = self.settings
        dns = pod_dns(plan.pod_dns, self._nsmap, self.kube_dns_ip)
        dns.resolv_conf()  # validates what kubelet will write, before anything is created
        image = client_image(plan, s.images.glibc, s.images.musl)

        def pods_of(generation: int) -> list[Manifest]:
            return workload.client_pods(
                s.plan.cluster,
                s.run_id,
                plan.name,
                nodes=self.node_map,
                dns=dns,
                image=image,
                generation=generation,
            )

        pods = pods_of(self._clients_gen)
        spec = same_pods_key(pods)
        if spec == self._clients_spec:
            # the last phase's pods, idle since their workers ended (same image, same DNS
            # config): kept, as netns keeps its pods; only their phase label moves here
            for pod in pods:
                s.api.apply(pod)
            old: list[tuple[str, str, str, str | None]] = []
        else:
            # the last phase's pods are deleted, and their grace period runs while the new
            # ones (under new names) start; they are gone before the phase begins. Until
            # then ``_client_refs`` holds both sets, for :meth:`drop_clients` on a failure
            old, self._clients_spec = list(self._client_refs), None
            _delete_all(s, old, wait_gone=False)
            self._clients_gen += 1
            pods = pods_of(self._clients_gen)
            for pod in pods:
                s.api.apply(pod)
                self._client_refs.append(ref(pod))
            self._clients_spec = same_pods_key(pods)
        selector = f"{run_selector(s.run_id)},{LABEL_PHASE}={plan.name}"
        _wait(
            s,
            f"client pods of phase {plan.name}",
            lambda: readiness.pods_not_ready(
                s.api.list("v1", "Pod", s.namespace, selector), len(pods)
            ),
        )
        if old:
            _wait_gone(s, old)
            self._client_refs = [r for r in self._client_refs if r not in old]

    def drop_tuners(self) -> None:
        """Delete the kept node tuners (the nodes' values put back) and wait until they are
        gone (none: nothing to do)."""
        stack, self._tuners_stack, self._tuners_key = self._tuners_stack, ExitStack(), None
        stack.close()

    def drop_clients(self) -> None:
        """Delete the client pods and wait until they are gone (none: nothing to do)."""
        refs, self._client_refs, self._clients_spec = self._client_refs, [], None
        _delete_all(s=self.settings, refs=refs, wait_gone=True)

    # --- load and counters ----------------------------------------------------------------
    def reset(self) -> dict[str, int | None]:
        """Each node's table without the run's earlier flows, before a phase: kind's nodes
        are flushed ({} returned); an existing cluster's nodes forget the flows from the run's
        client pods (every set it made) and to its HTTP server's pods and Service, and keep
        every other flow. Returns node -> entries deleted (None: unprivileged, nothing)."""
        access = self.settings.access
        nodes = self.real_nodes()
        if access.flushes:
            for node in nodes:
                access.flush(node)
            return {}
        sources, destinations = self._run_addresses()
        return {n: access.forget(n, sources, destinations) for n in nodes}

    def _run_addresses(self) -> tuple[set[str], set[str]]:
        """(the run's client pod IPs, every one it had; its HTTP server's pod IPs and
        ClusterIP)."""
        s = self.settings

        def ips(role: str) -> set[str]:
            pods = s.api.list(
                "v1", "Pod", s.namespace, f"{run_selector(s.run_id)},{LABEL_ROLE}={role}"
            )
            return {str(p["status"]["podIP"]) for p in pods if (p.get("status") or {}).get("podIP")}

        self._client_ips |= ips("client")
        return set(self._client_ips), {*ips("http-server"), self.http_service_ip()}

    def active_plan(self) -> PhasePlan:
        if self._plan is None:
            raise BackendError("no phase is active (enter cluster.phase(...) first)")
        return self._plan

    def client_targets(self) -> list[ClientTarget]:
        """The active phase's client pods: name, IP, and the resolv.conf kubelet wrote."""
        s = self.settings
        phase = self.active_plan()
        selector = f"{run_selector(s.run_id)},{LABEL_PHASE}={phase.name}"
        pods = sorted(
            s.api.list("v1", "Pod", s.namespace, selector), key=lambda p: p["metadata"]["name"]
        )
        if not pods:
            raise BackendError(f"phase {phase.name} has no client pods")

        def target(pod: dict[str, Any]) -> ClientTarget:
            name = pod["metadata"]["name"]
            ip = (pod.get("status") or {}).get("podIP")
            if not ip:
                raise BackendError(f"client pod {name} has no IP yet")
            argv = kubectl_exec(s.kubeconfig, s.namespace, name, ["cat", "/etc/resolv.conf"])
            return ClientTarget(pod=name, ip=str(ip), resolv=s.runner(argv).stdout)

        # one ``kubectl exec`` per pod, all at once (each takes ~0.2 s here)
        with ThreadPoolExecutor(max_workers=min(len(pods), 16)) as pool:
            return list(pool.map(target, pods))

    def http_service_ip(self) -> str:
        s = self.settings
        svc = s.api.get("v1", "Service", HTTP_SERVER_NAME, s.namespace)
        ip = (svc or {}).get("spec", {}).get("clusterIP")
        if not ip or ip == "None":
            raise BackendError(f"{s.namespace}/{HTTP_SERVER_NAME} has no ClusterIP")
        return str(ip)

    def worker_plans(
        self, targets: list[ClientTarget] | None = None, plan: PhasePlan | None = None
    ) -> list[WorkerPlan]:
        """The per-pod worker plans of ``plan`` (default: the active phase's); reads the pods'
        IPs and resolv.conf files unless ``targets`` are given."""
        return worker_plans(
            plan or self.active_plan(),
            self._nsmap,
            targets if targets is not None else self.client_targets(),
            self.http_service_ip(),
        )

    def launch_worker(self, plan: WorkerPlan, cpus: str | None = None) -> Handle:
        """Launch one pod's worker with its plan; it starts its load on cue
        (:mod:`.podworker`). ``cpus``: the CPUs it runs on (``taskset -c``)."""
        s = self.settings
        argv = kubectl_exec(s.kubeconfig, s.namespace, plan.pod, pod_worker_argv(cpus), stdin=True)
        if s.runner is subprocess_runner:  # the real ``kubectl exec``: streamed, started on cue
            return PodWorker(argv, plan)
        return RunnerWorker(s.runner, argv, plan)

    def node_counters(self) -> dict[str, NodeStat]:
        return {node: self.settings.access.stat(node) for node in self.real_nodes()}

    def fault_counters(self) -> dict[str, int]:
        """The race-window table's named counters, summed over the nodes."""
        table = tuner.fault_table(self.settings.run_id)
        access = self.settings.access
        return sum_node_counters(access.fault_counters(node, table) for node in self.real_nodes())


def coredns_selector(plan: RunPlan, nodes: NodeMap) -> dict[str, str]:
    return nodes.selector(plan.cluster.coredns_node)


# a phase's tuner is node-tuner-<phase>, and phase names start with [a-z0-9]: no clash
NODELOCAL_TUNER = f"{TUNER_PREFIX}--nodelocal"


def install_nodelocal(s: Settings, stack: ExitStack, dns_ip: str, nodes: NodeMap) -> None:
    """The upstream addon's objects; where node-cache's image is not available (kind's
    air-gapped Docker), its labelled stand-in: node-cache's Corefile on the pinned CoreDNS,
    and node-cache's interface and NOTRACK rules from a node tuner on every node."""
    if s.api.get("apps/v1", "DaemonSet", NODELOCAL_NAME, SYSTEM_NAMESPACE) is not None:
        raise BackendError(
            "kube-system/node-local-dns already exists; the harness will not "
            "replace a NodeLocal DNSCache it did not install"
        )
    domain = s.plan.cluster.cluster_domain
    objs = nodelocaldns.manifests(s.run_id, domain, dns_ip, image=s.images.nodelocal)
    image = s.images.nodelocal_stand_in
    if image is None:
        _apply_all(s, stack, objs, wait_gone=True)
    else:
        _apply_all(s, stack, objs[:2], wait_gone=True)  # its account and kube-dns-upstream
        svc = s.api.get("v1", "Service", NODELOCAL_UPSTREAM_SERVICE, SYSTEM_NAMESPACE) or {}
        upstream_ip = str(svc.get("spec", {}).get("clusterIP", ""))
        name = NODELOCAL_TUNER
        ips = [nodelocal.LOCAL_IP, dns_ip]
        ds = tuner.daemonset(
            s.run_id,
            s.namespace,
            name,
            sysctls={},
            nodes=nodes,
            image=s.images.tuner,
            ruleset=nodelocal.nft_ruleset(ips, nodelocal.TABLE),
            table=nodelocal.TABLE,
            link=(nodelocal.INTERFACE, ips),
        )
        _apply_all(s, stack, [ds], wait_gone=True)
        _ds_ready(s, name, s.namespace)
        stand_in = nodelocaldns.StandIn(image, upstream_ip)
        objs = nodelocaldns.manifests(
            s.run_id, domain, dns_ip, image=s.images.nodelocal, stand_in=stand_in
        )
        # only where the tuner made its interface (the scenario's nodes, not the control plane)
        node_cache = next(o for o in objs if o["kind"] == "DaemonSet")["spec"]["template"]
        node_cache["spec"]["affinity"] = ds["spec"]["template"]["spec"]["affinity"]
        _apply_all(s, stack, objs[2:], wait_gone=True)
    _ds_ready(s, NODELOCAL_NAME, SYSTEM_NAMESPACE)


@contextmanager
def realize_workload(s: Settings, nodes: NodeMap) -> Iterator[KubeCluster]:
    """Create the run's workload; on exit (any path) remove it and restore CoreDNS and the host."""
    with ExitStack() as stack:
        plan = s.plan
        if s.host is not None:
            for name, value in run_host_sysctls(plan).items():
                before = s.host.get(name)
                s.host.set(name, value)
                stack.callback(s.host.set, name, before)
        _apply_all(s, stack, [workload.namespace(s.run_id)], wait_gone=s.wait_namespace_gone)
        dns_ip = kube_dns_ip(s.api)
        core = CoreDNSState(s)
        if s.coredns_baseline:
            stack.callback(core.restore, s)
            core.apply(s, plan.coredns, coredns_selector(plan, nodes))
        _apply_all(
            s, stack, workload.http_server(plan.cluster, s.run_id, nodes, s.images.http_server)
        )
        _wait(
            s,
            "the HTTP server",
            lambda: readiness.deployment_not_ready(
                s.api.get("apps/v1", "Deployment", HTTP_SERVER_NAME, s.namespace)
            ),
        )
        base = tuner.node_sysctls(plan.sysctls, include_global=s.tuner_sets_globals)
        if base:
            name = f"{TUNER_PREFIX}-run"
            ds = tuner.daemonset(
                s.run_id, s.namespace, name, sysctls=base, nodes=nodes, image=s.images.tuner
            )
            _apply_all(s, stack, [ds], wait_gone=True)
            _ds_ready(s, name, s.namespace)
        if plan.nodelocal:
            install_nodelocal(s, stack, dns_ip, nodes)
        cluster = KubeCluster(s, nodes, dns_ip, core)
        stack.callback(cluster.drop_clients)
        stack.callback(cluster.drop_tuners)
        yield cluster


def same_pods_key(pods: Sequence[Manifest]) -> str:
    """What makes two phases' client pods the same pods (pure): everything but the phase
    label (a pod's spec cannot change while it runs)."""
    plain = []
    for pod in pods:
        meta = dict(pod["metadata"])
        meta["labels"] = {k: v for k, v in meta.get("labels", {}).items() if k != LABEL_PHASE}
        plain.append({**pod, "metadata": meta})
    return json.dumps(plain, sort_keys=True)
