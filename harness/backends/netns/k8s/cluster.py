"""The real Kubernetes parts on a built netns topology, as one context manager.

Order: control plane (attached to the vpc router) -> the kubelet's objects (Nodes, Services,
Pods with status) -> kube-proxy on every node -> CoreDNS in the CoreDNS pods. Everything is
undone in reverse on every exit path; a failure halfway undoes what was started.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dns.message
import dns.rcode

from cthcommon.errors import BackendError, BadInput
from cthcommon.netns import http_get, run, socket_in
from harness.backends.netns.k8s import coredns, kubeproxy, nodecache
from harness.backends.netns.k8s import pki as K
from harness.backends.netns.k8s.controlplane import (
    ControlPlane,
    ControlPlaneConfig,
    component_info,
)
from harness.backends.netns.k8s.kubelet import (
    COREDNS_LABELS,
    COREDNS_SA,
    SYSTEM,
    Kubelet,
    Port,
    coredns_rbac,
    kube_dns_service,
    kube_dns_upstream_service,
    pod,
    service,
)
from harness.backends.netns.k8s.procs import Components
from harness.backends.netns.startmarks import Marks
from harness.backends.netns.topologyplan import PodPlan, TopologyPlan
from harness.kernel.journal import Journal
from harness.kernel.process import Proc, stop_pids
from harness.kernel.stacked import Stacked
from harness.kubeapi.client import ApiClient, ApiError
from harness.kubeapi.wait import wait_for
from harness.results.evidence import Evidence
from harness.upstream import locate, release
from harness.upstream.skew import skew_note

DNS_SERVICE_IP = "10.96.0.10"
DNS_UPSTREAM_SERVICE_IP = "10.96.0.11"
HTTP_SERVICE_IP = "10.96.0.20"
UPSTREAM_DNS = "203.0.113.53"
KUBE_DNS_UDP_CHAIN = "KUBE-SVC-TCOU7JCQXEZGVUNU"  # kube-system/kube-dns:dns (UDP)
COREDNS_IMAGE = "registry.k8s.io/coredns/coredns"
TERMINATION_GRACE_S = 30.0  # a Pod's default terminationGracePeriodSeconds
# the EndpointSlice controller backs a Service off (1 s, doubling) after a sync on a stale
# informer cache; several scale events in a row can take it past 20 s
SCALE_WAIT_S = 60.0
DNS_PROBE_FIRST_S = 0.05  # the start-up's data-path probe: first wait for an answer
DNS_PROBE_MAX_S = 0.5


def dns_probe(ns: str, server: str, name: str, timeout: float = 0.5) -> str | None:
    """One A query from namespace ``ns``: None when answered NOERROR, else why not."""
    q = dns.message.make_query(name, "A")
    s = socket_in(ns, socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setblocking(True)
        s.settimeout(timeout)
        s.sendto(q.to_wire(), (server, 53))
        r = dns.message.from_wire(s.recvfrom(4096)[0])
    finally:
        s.close()
    return None if r.rcode() == dns.rcode.NOERROR and r.answer else f"rcode {r.rcode()}"


def endpoints_in_rules(rules: str, present: set[str], absent: set[str], port: int) -> str | None:
    """None when a node's rules (iptables-save or nft list ruleset) DNAT to every ``present``
    endpoint and to none of ``absent`` (pure)."""
    missing = sorted(ip for ip in present if f"{ip}:{port}" not in rules)
    stale = sorted(ip for ip in absent if f"{ip}:{port}" in rules)
    if missing or stale:
        return f"missing {missing}, stale {stale}"
    return None


@dataclass
class K8sSettings:
    kube_proxy: kubeproxy.KubeProxySettings = field(default_factory=kubeproxy.KubeProxySettings)
    corefile: str | None = None  # None: kubeadm's for the cluster domain
    corefile_source: str | None = None  # the user's file the Corefile came from (for errors)
    kubernetes: str | None = None  # pinned version (None: the versions file's default)
    kube_proxy_release: str | None = None  # kube-proxy alone from this release (None: the same)
    coredns_replicas: int | None = None  # CoreDNS pods running at start (None: every one)


class K8sParts(Stacked):
    """Control plane, kubelet objects, kube-proxy and CoreDNS for one topology plan."""

    def __init__(
        self,
        plan: TopologyPlan,
        journal: Journal,
        workdir: Path,
        settings: K8sSettings,
        marks: Marks | None = None,
    ) -> None:
        """``marks``: the start-up's stages (default: a clock of its own)."""
        self.marks = marks or Marks()
        self.plan = plan
        self.journal = journal
        self.workdir = workdir
        self.settings = settings
        self.cp = ControlPlane(
            ControlPlaneConfig(
                run_id=plan.run_id,
                ns=f"{plan.prefix}cp",
                vpc_ns=plan.vpc_ns,
                cluster_domain=plan.cluster_domain,
                kubernetes=settings.kubernetes,
            ),
            journal,
            workdir,
            self.marks,
            ready_on_enter=False,
        )
        self.comps = Components(journal, workdir)
        self._stack = ExitStack()
        self._api: ApiClient | None = None
        self.kubelet: Kubelet | None = None
        self.nodelocal = False
        self.nodelocal_kind = "node-cache"
        self.timings: dict[str, float] = {}
        self.corefile = ""
        replicas = settings.coredns_replicas or len(plan.role("coredns"))
        self._running: list[PodPlan] = plan.role("coredns")[:replicas]
        self._last_used: dict[str, float] = {}  # CoreDNS pod -> when a scale-down stopped it
        self._unrouted: set[str] = set()  # CoreDNS pods whose network a scale-down removed

    # --- lifecycle -------------------------------------------------------------------------
    @property
    def api(self) -> ApiClient:
        assert self._api is not None, "not started"
        return self._api

    def _start(self) -> None:
        t0 = time.monotonic()
        bins = {
            "kube-proxy": locate("kube-proxy", self.kube_proxy_release),
            "coredns": locate("coredns", self.settings.kubernetes),
        }
        self._stack.enter_context(self.cp)
        self.timings["control_plane"] = time.monotonic() - t0
        self._api = self._stack.enter_context(self.cp.client())
        # the API objects are not deleted at teardown: etcd's data is this run's own and
        # goes with the control plane
        self.kubelet = Kubelet(self._api, self.plan.run_id)
        self._stack.enter_context(self.comps)  # stopped before the control plane
        # what needs no service account, while the controller manager starts
        self._cluster_objects()
        self.corefile = self.settings.corefile or coredns.kubeadm_corefile(self.plan.cluster_domain)
        for p in self._running_coredns():  # its RBAC exists: it lists and watches at once
            self._start_coredns(p.name)
        if not self.cp.seeded:  # else the kept etcd data has the service accounts already
            self.cp.wait_ready()
        self._pods()
        self.marks.mark("pods")
        self.timings["objects"] = time.monotonic() - t0
        # the whole control plane ready, and the endpointslice controller's slices for the
        # pods written, before kube-proxy starts: its first rules sync then has every
        # endpoint (one started sooner syncs without them, and its next sync waits out
        # minSyncPeriod: measured, that ended later)
        self.cp.wait_ready()
        self._wait_endpoints()
        self.marks.mark("endpoints")
        for node in self.plan.nodes:
            kubeproxy.start(
                self.comps,
                bins["kube-proxy"],
                node_name=node.name,
                node_ns=node.ns,
                kubeconfig=self.cp.pki.kubeconfig(K.KUBE_PROXY),
                settings=self.settings.kube_proxy,
            )
        for node in self.plan.nodes:  # its first rules sync done (its /healthz passes sooner)
            proc = self.comps.procs[kubeproxy.proc_name(node.name)]
            self.wait_kube_proxy_synced(node.name, proc)
        self.marks.mark("kube-proxy synced")
        self._wait_coredns(self._running_coredns())
        self.marks.mark("CoreDNS ready")
        self._wait_data_path()
        self.marks.mark("kube-dns answers")
        self.timings["ready"] = time.monotonic() - t0

    @property
    def coredns_replicas(self) -> int:
        """CoreDNS replicas in service (a rollout swaps pods, never changes the count)."""
        return len(self._running)

    def coredns_ips(self) -> set[str]:
        return {p.ip for p in self._running}

    def _running_coredns(self) -> list[PodPlan]:
        return list(self._running)

    def _start_coredns(self, pod_name: str) -> None:
        p = next(x for x in self.plan.role("coredns") if x.name == pod_name)
        coredns.start(
            self.comps,
            locate("coredns", self.settings.kubernetes),
            pod_name=p.name,
            pod_ns=p.ns,
            corefile=self.corefile,
            kubeconfig=self.cp.pki.kubeconfig(K.COREDNS),
            upstreams=[UPSTREAM_DNS],
        )

    def _wait_coredns(self, pods: list[PodPlan]) -> None:
        """Until each CoreDNS is ready. One that exits on a user's Corefile is bad input: the
        message names the file and quotes CoreDNS's own error."""
        for p in pods:
            proc = self.comps.procs[coredns.proc_name(p.name)]
            try:
                coredns.wait_ready(proc, p.ns, p.ip, loop=coredns.uses_loop(self.corefile))
            except BackendError as e:
                if self.settings.corefile_source is None or proc.alive():
                    raise
                source = self.settings.corefile_source
                written = self.comps.dir / coredns.proc_name(p.name) / "Corefile"
                error = coredns.error_line(proc.tail(4000))
                with contextlib.suppress(OSError, UnicodeDecodeError):
                    error = coredns.in_user_file(
                        error, written.read_text(), source, Path(source).read_text()
                    )
                raise BadInput(
                    f"CoreDNS {self.versions_of('coredns')} rejected the Corefile: {error}",
                    field="cluster.coredns.corefile",
                    source=self.settings.corefile_source,
                ) from e

    @property
    def kube_proxy_release(self) -> str | None:
        return self.settings.kube_proxy_release or self.settings.kubernetes

    def kube_proxy_pid(self, node_name: str) -> int | None:
        """The PID of the kube-proxy running on ``node_name`` now (None: none runs)."""
        proc = self.comps.procs.get(kubeproxy.proc_name(node_name))
        return proc.pid if proc is not None and proc.alive() else None

    def versions_of(self, binary: str) -> str:
        return component_info(binary, self.settings.kubernetes)["version"]

    # --- changes a phase may make ------------------------------------------------------------
    def set_coredns_replicas(self, n: int) -> None:
        """Scale CoreDNS as a Deployment does: the first ``n`` pods run, the rest are deleted;
        the real endpointslice controller and kube-proxy follow."""
        pods = self.plan.role("coredns")
        if not 1 <= n <= len(pods):
            raise BadInput(
                "CoreDNS replicas out of range for this topology",
                field="coredns.replicas",
                value=n,
                allowed=f"1..{len(pods)}",
            )
        k = self.kubelet
        assert k is not None
        want = pods[:n]
        for p in self._running:
            if p not in want:
                k.delete_pod(p.name, SYSTEM)
                self.comps.stop(coredns.proc_name(p.name), grace_s=0.5)
        started = [p for p in want if p not in self._running]
        self._bring_up(started)
        self._running = list(want)
        self._wait_service_rules({p.ip for p in want}, {p.ip for p in pods if p not in want})

    def scale_coredns(self, n: int, mark: Callable[[str, str, str], None]) -> None:
        """``kubectl scale deployment coredns --replicas=n`` during a phase, to any count
        including 0. Scaling down deletes the newest pods (their endpoints go), kills their
        CoreDNS (terminationGracePeriodSeconds 0) and tears their network down as CNI DEL
        does (a routed CNI leaves a blackhole route for its address block: packets still
        DNATed to the address are dropped silently on its node). Scaling up starts new pods
        (new IPs, the pods least recently used) and they become Ready once CoreDNS answers.
        ``mark(event, pod, ip)`` is called at each step: ``deleted``, ``stopped``,
        ``network-removed``, ``started``, ``ready``; then ``endpoints`` (the EndpointSlices
        list exactly the running pods) and ``rules`` (every node's kube-proxy rules DNAT
        kube-dns to exactly them), with pod ``""`` and the endpoint IPs, comma-separated."""
        k = self.kubelet
        assert k is not None
        pods = self.plan.role("coredns")
        if not 0 <= n <= len(pods):
            raise BackendError(f"scale to {n} CoreDNS replicas: the topology has {len(pods)}")
        if n < len(self._running):
            for p in reversed(self._running[n:]):
                k.delete_pod(p.name, SYSTEM)
                mark("deleted", p.name, p.ip)
                self.comps.stop(coredns.proc_name(p.name), grace_s=0.0)
                mark("stopped", p.name, p.ip)
                self._pod_network(p, up=False)
                mark("network-removed", p.name, p.ip)
                self._last_used[p.name] = time.monotonic()
            self._running = self._running[:n]
        elif n > len(self._running):
            idle = [p for p in pods if p not in self._running]
            idle.sort(key=lambda p: self._last_used.get(p.name, 0.0))
            new = idle[: n - len(self._running)]
            for p in new:
                mark("started", p.name, p.ip)
            self._bring_up(new)
            for p in new:
                mark("ready", p.name, p.ip)
            self._running = [*self._running, *new]
        ips = {p.ip for p in self._running}
        k.wait_endpoints("kube-dns", SYSTEM, ips, timeout_s=SCALE_WAIT_S)
        mark("endpoints", "", ",".join(sorted(ips)))
        self._wait_rules(ips, {p.ip for p in pods} - ips, timeout_s=SCALE_WAIT_S)
        mark("rules", "", ",".join(sorted(ips)))

    def stop_kube_proxy(self, node_name: str) -> int:
        """SIGTERM to the node's kube-proxy by its PID, as kubelet stops a container (SIGKILL
        after the default grace); its PID. Its rules stay in the node's tables, as they do."""
        name = kubeproxy.proc_name(node_name)
        pid = self.comps.procs[name].pid
        self.comps.stop(name, grace_s=TERMINATION_GRACE_S)
        return pid

    def start_kube_proxy(self, node_name: str) -> Proc:
        """The node's kube-proxy again: the same binary, the same flags and config."""
        node = self.plan.node(node_name)
        return kubeproxy.start(
            self.comps,
            locate("kube-proxy", self.kube_proxy_release),
            node_name=node.name,
            node_ns=node.ns,
            kubeconfig=self.cp.pki.kubeconfig(K.KUBE_PROXY),
            settings=self.settings.kube_proxy,
        )

    def wait_kube_proxy_synced(self, node_name: str, proc: Proc, timeout_s: float = 30) -> float:
        """Until the node's (new) kube-proxy has synced its rules once; when it did, on the
        monotonic clock (its metrics give the wall-clock time of its last sync)."""
        ns = self.plan.node(node_name).ns
        synced: list[float] = []

        def probe() -> str | None:
            wall = kubeproxy.read_last_sync(ns)
            if wall is None:
                return f"{kubeproxy.LAST_SYNC_METRIC} not set yet"
            synced.append(wall - time.time() + time.monotonic())
            return None

        wait_for(f"{proc.name}'s first rules sync", probe, timeout_s=timeout_s, procs=[proc])
        return synced[-1]

    def _service_manifest(self, service: str) -> dict[str, Any]:
        if service != f"{SYSTEM}/kube-dns":
            raise BackendError(f"re-create {service}: only {SYSTEM}/kube-dns is supported")
        return kube_dns_service(DNS_SERVICE_IP, self.plan.run_id)

    def delete_service(self, service: str) -> str:
        """Delete a Service through the API; its ClusterIP."""
        self._service_manifest(service)
        ns, name = service.split("/")
        obj = self.api.get("v1", "Service", name, ns)
        if obj is None:
            raise BackendError(f"delete Service {service}: it does not exist")
        self.api.delete("v1", "Service", name, ns, grace_s=0, propagation="Background")
        return str(obj["spec"].get("clusterIP", ""))

    def create_service(self, service: str, timeout_s: float = 20) -> str:
        """Create a deleted Service again from the same manifest (its spec pins the ClusterIP,
        as kubeadm's kube-dns does); the ClusterIP the apiserver gave it. The address goes back
        to the allocator with the delete; a create that races its release is retried."""
        created: list[str] = []

        def probe() -> str | None:
            try:
                obj = self.api.create(self._service_manifest(service))
            except ApiError as e:
                if e.status in (409, 422):  # still terminating, or the IP not released yet
                    return str(e)
                raise
            created.append(str(obj["spec"].get("clusterIP", "")))
            return None

        wait_for(f"Service {service} created again", probe, timeout_s=timeout_s)
        return created[-1]

    def wait_endpoints_of(
        self, service: str, ips: set[str], timeout_s: float = SCALE_WAIT_S
    ) -> None:
        """Until the Service's EndpointSlices list exactly ``ips`` as ready (none: gone)."""
        k = self.kubelet
        assert k is not None
        ns, name = service.split("/")
        k.wait_endpoints(name, ns, ips, timeout_s=timeout_s)

    def wait_cluster_ip_in_rules(self, ip: str, present: bool, timeout_s: float = 30) -> None:
        """Until every node's kube-proxy rules mention the ClusterIP (or none does)."""

        def probe() -> str | None:
            for node in self.plan.nodes:
                if (ip in self.node_rules(node.ns)) != present:
                    return f"{node.name}: {ip} {'absent from' if present else 'still in'} rules"
            return None

        wait_for(f"kube-proxy rules for {ip}", probe, timeout_s=timeout_s)

    def undo_events(self) -> None:
        """After a phase's events, on every path: every node's kube-proxy running, and kube-dns
        there again (an event that failed halfway may have left either down)."""
        for node in self.plan.nodes:
            proc = self.comps.procs.get(kubeproxy.proc_name(node.name))
            if proc is None or not proc.alive():
                self.comps.procs.pop(kubeproxy.proc_name(node.name), None)
                kubeproxy.wait_ready(self.start_kube_proxy(node.name), node.ns)
        if self.api.get("v1", "Service", "kube-dns", SYSTEM) is None:
            self.create_service(f"{SYSTEM}/kube-dns")

    def _pod_network(self, p: PodPlan, *, up: bool) -> None:
        """CNI DEL (``up=False``): the pod's route on its node becomes a blackhole route, as a
        routed CNI (Calico) leaves one for its block; CNI ADD: the route to its veth again."""
        node_ns = self.plan.node(p.node).ns
        dest = [f"{p.ip}/32", "dev", p.host_if] if up else ["blackhole", f"{p.ip}/32"]
        run(["ip", "route", "replace", *dest], netns=node_ns)
        if up:
            self._unrouted.discard(p.name)
        else:
            self._unrouted.add(p.name)

    def _bring_up(self, pods: list[PodPlan]) -> None:
        """New CoreDNS pods as kubelet runs them: created not Ready, the process started, and
        Ready (so in the EndpointSlices, so in kube-proxy's rules) only once CoreDNS's /ready
        answers; traffic never reaches a pod before it listens."""
        k = self.kubelet
        assert k is not None
        for p in pods:
            if p.name in self._unrouted:  # CNI ADD: the pod's network back
                self._pod_network(p, up=True)
            k.run_pod(self._coredns_pod(p), p.ip, self.plan.node(p.node).ip, ready=False)
            self._start_coredns(p.name)
        self._wait_coredns(pods)
        for p in pods:
            k.set_ready(p.name, SYSTEM, p.ip, self.plan.node(p.node).ip, ready=True)

    def restart_coredns(self, corefile: str) -> None:
        """A Corefile change rolled out: every running CoreDNS restarts on the new text."""
        self.corefile = corefile
        running = self._running_coredns()
        for p in running:
            self.comps.stop(coredns.proc_name(p.name), grace_s=0.5)
            self._start_coredns(p.name)
        self._wait_coredns(running)

    def rollout_coredns(self, mark: Callable[[str, PodPlan], None]) -> None:
        """``kubectl rollout restart`` of CoreDNS, as the Deployment controller does it with
        one pod of surge: for each running pod, a new pod (a new IP) starts and becomes
        Ready, then the old one is deleted (its endpoint goes) and gets SIGTERM; it serves
        through its Corefile's lameduck and exits (SIGKILL after the default 30 s grace).
        Real kube-proxy follows the EndpointSlices and clears the old IPs' UDP conntrack
        entries. ``mark(event, pod)`` is called at each step ("start", "ready", "deleted",
        "exited"). A replica that exits takes its metrics with it: the phase's server counts
        come from the pods' nft counters instead (the netns cluster's ``_counters``)."""
        k = self.kubelet
        assert k is not None
        old = self._running_coredns()
        spare = [p for p in self.plan.role("coredns") if p not in old][: len(old)]
        if len(spare) < len(old):
            raise BackendError(
                f"a rollout needs {len(old)} more CoreDNS pods than run; the plan has "
                f"{len(spare)} (plan_run sizes the topology for it)"
            )
        leaving: list[tuple[PodPlan, Proc]] = []
        for o, n in zip(old, spare, strict=True):
            mark("start", n)
            self._bring_up([n])
            k.wait_endpoints("kube-dns", SYSTEM, {p.ip for p in self._running} | {n.ip})
            mark("ready", n)
            self._running = [n if p == o else p for p in self._running]
            proc = self.comps.procs.pop(coredns.proc_name(o.name))
            k.delete_pod(o.name, SYSTEM)
            proc.popen.send_signal(signal.SIGTERM)
            mark("deleted", o)
            leaving.append((o, proc))
        self._await_exit(leaving, mark)

    def _await_exit(
        self,
        leaving: list[tuple[PodPlan, Proc]],
        mark: Callable[[str, PodPlan], None],
    ) -> None:
        deadline = time.monotonic() + TERMINATION_GRACE_S
        waiting = list(leaving)
        while waiting and time.monotonic() < deadline:
            for item in list(waiting):
                if item[1].popen.poll() is not None:
                    mark("exited", item[0])
                    waiting.remove(item)
            time.sleep(0.05)
        stop_pids([(proc.pid, proc.start) for _, proc in waiting], 0.0)  # past the grace
        for o, _ in waiting:
            mark("killed", o)

    def undo_rollout(self) -> None:
        """After the phase: the scenario's replicas again (the original pods, new processes)."""
        self.set_coredns_replicas(self.coredns_replicas)

    def _wait_service_rules(self, present: set[str], absent: set[str]) -> None:
        """Until every node's kube-proxy rules DNAT kube-dns to exactly ``present``."""
        k = self.kubelet
        assert k is not None
        k.wait_endpoints("kube-dns", SYSTEM, present, timeout_s=SCALE_WAIT_S)
        self._wait_rules(present, absent)

    def _wait_rules(self, present: set[str], absent: set[str], timeout_s: float = 20) -> None:
        def probe() -> str | None:
            for node in self.plan.nodes:
                why = endpoints_in_rules(self.node_rules(node.ns), present, absent, 53)
                if why:
                    return f"{node.name}: {why}"
            return None

        wait_for("kube-proxy rules for kube-dns", probe, timeout_s=timeout_s)

    def _wait_endpoints(self) -> None:
        """Until the controller's EndpointSlices list the running pods of both Services."""
        k = self.kubelet
        assert k is not None
        k.wait_endpoints("kube-dns", SYSTEM, {p.ip for p in self._running_coredns()})
        k.wait_endpoints("http-server", self.plan.namespace, {p.ip for p in self.plan.role("http")})

    def _wait_data_path(self) -> None:
        """Until the controller's EndpointSlices exist and a client pod gets an answer through
        the kube-dns ClusterIP (kube-proxy has written the endpoints' rules)."""
        self._wait_endpoints()
        clients = self.plan.role("client")
        if not clients:
            return
        name = f"kube-dns.{SYSTEM}.svc.{self.plan.cluster_domain}"
        procs = list(self.comps.procs.values())
        tries = [0]

        def probe() -> str | None:
            # a short wait first (an answer on this path takes milliseconds), doubling up to
            # 0.5 s so a loaded machine's slow answer is still caught
            tries[0] += 1
            timeout = min(DNS_PROBE_MAX_S, DNS_PROBE_FIRST_S * 2 ** (tries[0] - 1))
            return dns_probe(clients[0].ns, DNS_SERVICE_IP, name, timeout=timeout)

        wait_for(
            f"an answer for {name} through {DNS_SERVICE_IP} from {clients[0].name}",
            probe,
            timeout_s=20,
            procs=procs,
            interval_s=0.02,
        )

    def _cluster_objects(self) -> None:
        """CoreDNS's RBAC, the Nodes, the namespace and the Services: none needs a service
        account, so they are made while the controller manager starts."""
        k = self.kubelet
        assert k is not None
        rid = self.plan.run_id
        for obj in coredns_rbac(rid):
            k.create(obj)
        for node in self.plan.nodes:
            k.register_node(node.name, node.ip, node.pod_cidr)
        if self.plan.namespace not in ("default", SYSTEM):
            k.ensure_namespace(self.plan.namespace)
        k.create_service(kube_dns_service(DNS_SERVICE_IP, rid))
        k.create_service(kube_dns_upstream_service(DNS_UPSTREAM_SERVICE_IP, rid))
        k.create_service(
            service(
                "http-server",
                self.plan.namespace,
                cluster_ip=HTTP_SERVICE_IP,
                ports=[Port("http", 80)],
                selector={"app": "http-server"},
                run_id=rid,
            )
        )

    def _pods(self) -> None:
        """The pods, bound to their nodes and reported running (their namespaces' default
        service accounts exist: the controller manager is ready)."""
        k = self.kubelet
        assert k is not None
        rid = self.plan.run_id
        if self.plan.namespace not in ("default", SYSTEM):
            wait_for(
                f"the default service account of {self.plan.namespace}",
                lambda: (
                    None
                    if self.api.get("v1", "ServiceAccount", "default", self.plan.namespace)
                    else "absent"
                ),
                timeout_s=20,
            )
        running = {p.name for p in self._running_coredns()}
        for p in self.plan.pods:
            host_ip = self.plan.node(p.node).ip
            if p.role == "coredns" and p.name not in running:
                continue  # scaled in later by a phase (set_coredns_replicas)
            if p.role == "coredns":
                obj = self._coredns_pod(p)
            elif p.role == "http":
                obj = pod(
                    p.name, self.plan.namespace, p.node, rid, role="http-server",
                    labels={"app": "http-server"}, ports=[Port("http", 80)],
                )  # fmt: skip
            else:
                obj = pod(p.name, self.plan.namespace, p.node, rid, role=p.role)
            k.run_pod(obj, p.ip, host_ip)

    def _coredns_pod(self, p: PodPlan) -> dict[str, Any]:
        image = f"{COREDNS_IMAGE}:{release(self.settings.kubernetes).coredns}"
        return pod(
            p.name, SYSTEM, p.node, self.plan.run_id, role="coredns", labels=COREDNS_LABELS,
            image=image, service_account=COREDNS_SA, dns_policy="Default",
            ports=[Port("dns", 53, "UDP"), Port("dns-tcp", 53), Port("metrics", 9153)],
        )  # fmt: skip

    # --- queries ---------------------------------------------------------------------------
    def components(self) -> dict[str, dict[str, str]]:
        out = self.cp.components()
        out["coredns"] = component_info("coredns", self.settings.kubernetes)
        out["kube-proxy"] = component_info("kube-proxy", self.kube_proxy_release)
        out["kube-proxy"]["mode"] = self.settings.kube_proxy.mode
        if self.settings.kube_proxy_release is not None:
            apiserver = out.get("kube-apiserver", {}).get("version", "")
            out["kube-proxy"]["release"] = (
                f"kube-proxy alone from {self.settings.kube_proxy_release}, beside the control "
                f"plane and CoreDNS of {release(self.settings.kubernetes).kubernetes}"
            )
            out["kube-proxy"]["skew"] = skew_note(out["kube-proxy"]["version"], apiserver)
        if self.settings.corefile_source is not None:
            out["coredns"]["corefile"] = self.settings.corefile_source
        kind, _ = nodecache.implementation(self.settings.kubernetes)
        if kind == "node-cache":
            out["node-cache"] = component_info("node-cache", self.settings.kubernetes)
        else:
            core = out["coredns"]["version"]
            out["node-cache"] = {
                "version": f"{release(self.settings.kubernetes).node_cache} (not built)",
                "source": f"stand-in: coredns {core} runs node-cache's Corefile; the harness "
                "installs node-cache's iptables rules",
            }
        return out

    def coredns_counts(self) -> dict[str, coredns.Counts]:
        """Each running replica's own received/answered counts (its Prometheus metrics)."""
        return {p.name: coredns.read_counts(p.ns, p.ip) for p in self._running_coredns()}

    def procs(self) -> list[Proc]:
        return [*self.cp.procs.values(), *self.comps.procs.values()]

    def add_evidence(self, ev: Evidence) -> None:
        """Per node kube-proxy's own rules and node-cache's Corefile; per CoreDNS replica its
        Corefile and metrics (for bug bundles)."""
        mode = self.settings.kube_proxy.mode
        for node in self.plan.nodes:
            files = ev.nodes.setdefault(node.name, {})
            name = "nft-ruleset.txt" if mode == "nftables" else "iptables-save.txt"
            files[f"kube-proxy-{name}"] = self.node_rules(node.ns)
            nc = self.comps.dir / nodecache.proc_name(node.name) / "Corefile"
            if nc.exists():
                files["node-cache-Corefile"] = nc.read_text()
        for p in self._running_coredns():
            files = ev.pod_files.setdefault(p.name, {})
            cf = self.comps.dir / coredns.proc_name(p.name) / "Corefile"
            if cf.exists():
                files["Corefile"] = cf.read_text()
            try:
                _, body = http_get(p.ns, p.ip, coredns.METRICS_PORT, "/metrics")
                files["metrics.txt"] = body
            except OSError as e:
                files["metrics.txt"] = f"unreadable: {e}"

    def node_rules(self, node_ns: str) -> str:
        """kube-proxy's own rules on a node: iptables-save, or the nft ruleset."""
        if self.settings.kube_proxy.mode == "nftables":
            return run(["nft", "list", "ruleset"], netns=node_ns).stdout
        return run(["iptables-save"], netns=node_ns).stdout

    # --- NodeLocal DNSCache ------------------------------------------------------------------
    def enable_nodelocal(self) -> None:
        if self.nodelocal:
            return
        kind, binary = nodecache.implementation(self.settings.kubernetes)
        self.nodelocal_kind = kind
        self.nodelocal = True
        try:
            for node in self.plan.nodes:
                proc = nodecache.start(
                    self.comps,
                    binary,
                    node_name=node.name,
                    node_ns=node.ns,
                    domain=self.plan.cluster_domain,
                    kube_dns_ip=DNS_SERVICE_IP,
                    upstream_service_ip=DNS_UPSTREAM_SERVICE_IP,
                    upstreams=[UPSTREAM_DNS],
                    kind=kind,
                )
                nodecache.wait_ready(proc, node.ns)
        except BaseException:
            self.disable_nodelocal()
            raise

    def disable_nodelocal(self) -> None:
        if not self.nodelocal:
            return
        for node in self.plan.nodes:
            nodecache.stop(self.comps, node.name, node.ns, kind=self.nodelocal_kind)
        self.nodelocal = False


@contextmanager
def k8s_parts(
    plan: TopologyPlan, journal: Journal, workdir: Path, settings: K8sSettings | None = None
) -> Iterator[K8sParts]:
    with K8sParts(plan, journal, workdir, settings or K8sSettings()) as parts:
        yield parts
