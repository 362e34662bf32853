"""The harness as kubelet and CNI: Node objects with their addresses, Services with the
scenario's ClusterIPs, and Pods bound to their node whose status (podIP, Running, Ready) the
harness reports, so the real endpointslice controller makes the EndpointSlices.

Object rendering is pure; :class:`Kubelet` is the thin shell that sends them. Everything
carries the run's labels, so :meth:`Kubelet.cleanup` finds it with one selector.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.backends.kube.names import run_labels, run_selector
from harness.kubeapi.client import ApiClient, ApiError, Obj
from harness.kubeapi.wait import wait_for

# kube-apiserver's ClusterIP allocator (ipallocator.MetaAllocator) learns the ServiceCIDRs
# from an informer, in a worker of its own, after the apiserver serves and passes /readyz:
# a Service that pins its ClusterIP and comes sooner is refused with this message
# (ErrMismatchedNetwork). Seen twice in one CI run of the suite (starts from the kept control
# plane, some hundreds of them).
ALLOCATOR_NOT_LOADED = "the provided network does not match the current range"
ALLOCATOR_WAIT_S = 20.0

KUBE_DNS = "kube-dns"
KUBE_DNS_UPSTREAM = "kube-dns-upstream"
SYSTEM = "kube-system"
COREDNS_LABELS = {"k8s-app": "kube-dns"}
# kubeadm's names for the CoreDNS objects (cmd/kubeadm/app/phases/addons/dns/manifests.go)
COREDNS_ROLE = "system:coredns"
COREDNS_SA = "coredns"


@dataclass(frozen=True)
class Port:
    name: str
    port: int
    protocol: str = "TCP"
    target: int | None = None

    def manifest(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "port": self.port,
            "protocol": self.protocol,
            "targetPort": self.target or self.port,
        }


DNS_PORTS = (Port("dns", 53, "UDP"), Port("dns-tcp", 53, "TCP"), Port("metrics", 9153, "TCP"))
UPSTREAM_PORTS = (Port("dns", 53, "UDP"), Port("dns-tcp", 53, "TCP"))


def _meta(
    name: str, run_id: str, role: str, namespace: str | None = None, **labels: str
) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {**labels, **run_labels(run_id, role)}}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def node(name: str, ip: str, pod_cidr: str, run_id: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": _meta(
            name, run_id, "node", **{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
        ),
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]},
    }


def node_status(name: str, ip: str) -> dict[str, Any]:
    now = _now()
    return {
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": name},
            ],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "conntrack-harness plays the kubelet",
                    "lastHeartbeatTime": now,
                    "lastTransitionTime": now,
                }
            ],
        }
    }


def namespace(name: str, run_id: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(name, run_id, "namespace")}


def service(
    name: str,
    ns: str,
    *,
    cluster_ip: str,
    ports: Sequence[Port],
    selector: Mapping[str, str],
    run_id: str,
    labels: Mapping[str, str] | None = None,
) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(name, run_id, "service", ns, **(labels or {})),
        "spec": {
            "type": "ClusterIP",
            "clusterIP": cluster_ip,
            "selector": dict(selector),
            "ports": [p.manifest() for p in ports],
        },
    }


def kube_dns_service(cluster_ip: str, run_id: str) -> Obj:
    """kube-system/kube-dns as kubeadm makes it (dns, dns-tcp, metrics)."""
    labels = {**COREDNS_LABELS, "kubernetes.io/name": "CoreDNS"}
    return service(
        KUBE_DNS,
        SYSTEM,
        cluster_ip=cluster_ip,
        ports=DNS_PORTS,
        selector=COREDNS_LABELS,
        run_id=run_id,
        labels=labels,
    )


def kube_dns_upstream_service(cluster_ip: str, run_id: str) -> Obj:
    """NodeLocal DNSCache's second Service onto the CoreDNS pods (the addon's manifest)."""
    labels = {**COREDNS_LABELS, "kubernetes.io/name": "KubeDNSUpstream"}
    return service(
        KUBE_DNS_UPSTREAM,
        SYSTEM,
        cluster_ip=cluster_ip,
        ports=UPSTREAM_PORTS,
        selector=COREDNS_LABELS,
        run_id=run_id,
        labels=labels,
    )


def coredns_rbac(run_id: str) -> list[Obj]:
    """kubeadm's ServiceAccount, ClusterRole and binding for CoreDNS."""
    rbac = "rbac.authorization.k8s.io/v1"
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(COREDNS_SA, run_id, "coredns", SYSTEM),
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRole",
            "metadata": _meta(COREDNS_ROLE, run_id, "coredns"),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": rbac,
            "kind": "ClusterRoleBinding",
            "metadata": _meta(COREDNS_ROLE, run_id, "coredns"),
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": COREDNS_ROLE,
            },
            "subjects": [{"kind": "ServiceAccount", "name": COREDNS_SA, "namespace": SYSTEM}],
        },
    ]


def pod(
    name: str,
    ns: str,
    node_name: str,
    run_id: str,
    *,
    role: str,
    labels: Mapping[str, str] | None = None,
    image: str = "conntrack-harness/netns",
    ports: Sequence[Port] = (),
    service_account: str | None = None,
    dns_policy: str = "ClusterFirst",
) -> Obj:
    container: dict[str, Any] = {"name": role, "image": image}
    if ports:
        container["ports"] = [
            {"name": p.name, "containerPort": p.target or p.port, "protocol": p.protocol}
            for p in ports
        ]
    spec: dict[str, Any] = {
        "nodeName": node_name,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "dnsPolicy": dns_policy,
        "terminationGracePeriodSeconds": 0,
        "containers": [container],
    }
    if service_account:
        spec["serviceAccountName"] = service_account
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(name, run_id, role, ns, **(labels or {})),
        "spec": spec,
    }


def pod_status(ip: str, host_ip: str, *, ready: bool = True) -> dict[str, Any]:
    """The status a kubelet reports for a running pod (Ready as given)."""
    now = _now()
    flag = "True" if ready else "False"
    conds = [("PodScheduled", "True"), ("Initialized", "True")]
    conds += [("ContainersReady", flag), ("Ready", flag)]
    return {
        "status": {
            "phase": "Running",
            "hostIP": host_ip,
            "hostIPs": [{"ip": host_ip}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": now,
            "conditions": [{"type": t, "status": s, "lastTransitionTime": now} for t, s in conds],
        }
    }


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def slice_endpoints(slices: Sequence[Mapping[str, Any]]) -> dict[str, bool]:
    """address -> ready, over a Service's EndpointSlices (pure)."""
    out: dict[str, bool] = {}
    for s in slices:
        for ep in s.get("endpoints") or []:
            ready = bool((ep.get("conditions") or {}).get("ready", False))
            for addr in ep.get("addresses") or []:
                out[addr] = ready
    return out


# deleted in this order: what refers to others first, namespaces last
CLEANUP_KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "Pod"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "DaemonSet"),
    ("v1", "ConfigMap"),
    ("v1", "ServiceAccount"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("v1", "Node"),
    ("v1", "Namespace"),
)


def allocator_not_loaded(e: ApiError) -> bool:
    """The refusal of a ClusterIP the allocator does not know a range for yet (pure)."""
    return e.status == 422 and ALLOCATOR_NOT_LOADED in e.message


class Kubelet:
    """Sends the kubelet's and the CNI's part to the apiserver for one run."""

    def __init__(self, client: ApiClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    def register_node(self, name: str, ip: str, pod_cidr: str) -> None:
        self.client.create(node(name, ip, pod_cidr, self.run_id))
        status = node_status(name, ip)
        self.client.merge_patch("v1", "Node", name, None, status, subresource="status")

    def ensure_namespace(self, name: str) -> None:
        if self.client.get("v1", "Namespace", name) is None:
            self.client.create(namespace(name, self.run_id))

    def create(self, obj: Mapping[str, Any]) -> Obj:
        return self.client.create(obj)

    def create_service(
        self,
        obj: Mapping[str, Any],
        *,
        timeout_s: float = ALLOCATOR_WAIT_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> Obj:
        """Create a Service that pins its ClusterIP, retrying only while the apiserver's
        allocator has not loaded the Service range yet; any other refusal is raised at once."""
        deadline = clock() + timeout_s
        while True:
            try:
                return self.client.create(obj)
            except ApiError as e:
                if not allocator_not_loaded(e) or clock() >= deadline:
                    raise
            sleep(0.05)

    def run_pod(self, obj: Mapping[str, Any], ip: str, host_ip: str, *, ready: bool = True) -> None:
        """Create the pod bound to its node, then report it running (the CNI gave it ``ip``)."""
        meta = obj["metadata"]
        self.client.create(obj)
        self.set_ready(meta["name"], meta["namespace"], ip, host_ip, ready=ready)

    def set_ready(self, name: str, ns: str, ip: str, host_ip: str, *, ready: bool) -> None:
        self.client.merge_patch(
            "v1", "Pod", name, ns, pod_status(ip, host_ip, ready=ready), subresource="status"
        )

    def delete_pod(self, name: str, ns: str) -> None:
        self.client.delete("v1", "Pod", name, ns, grace_s=0, propagation="Background")

    def endpoints(self, service_name: str, ns: str) -> dict[str, bool]:
        slices = self.client.list(
            "discovery.k8s.io/v1",
            "EndpointSlice",
            ns,
            label_selector=f"kubernetes.io/service-name={service_name}",
        )
        return slice_endpoints(slices)

    def wait_endpoints(
        self, service_name: str, ns: str, ready_ips: set[str], timeout_s: float = 20
    ) -> None:
        """Until the Service's EndpointSlices list exactly ``ready_ips`` as ready."""

        def probe() -> str | None:
            eps = self.endpoints(service_name, ns)
            ready = {a for a, r in eps.items() if r}
            return None if ready == ready_ips else f"ready endpoints {sorted(ready)}"

        wait_for(f"EndpointSlices of {ns}/{service_name}", probe, timeout_s=timeout_s)

    def leftovers(self) -> list[str]:
        """``Kind ns/name`` of everything still carrying this run's labels."""
        sel = run_selector(self.run_id)
        out = []
        for api_version, kind in CLEANUP_KINDS:
            for o in self.client.list(api_version, kind, None, label_selector=sel):
                m = o["metadata"]
                out.append(f"{kind} {m.get('namespace', '')}/{m['name']}")
        return out

    def cleanup(self) -> None:
        """Delete everything this run labelled (idempotent; absent objects are fine)."""
        sel = run_selector(self.run_id)
        for api_version, kind in CLEANUP_KINDS:
            for o in self.client.list(api_version, kind, None, label_selector=sel):
                m = o["metadata"]
                try:
                    self.client.delete(
                        api_version, kind, m["name"], m.get("namespace"),
                        grace_s=0, propagation="Background",
                    )  # fmt: skip
                except ApiError as e:
                    if e.status != 409:  # a namespace already terminating
                        raise
