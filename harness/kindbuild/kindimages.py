"""The container images a kind node carries, as image specs: names exactly as kubeadm and
kind expect them, contents from the pinned upstream builds. Pure: no docker, no subprocess.

- kube-apiserver, kube-controller-manager, kube-scheduler, etcd: the static binary alone in
  ``/usr/local/bin`` (kubeadm's static pod manifests name the command);
- kube-proxy: on the node rootfs (it runs ``iptables-restore``, ``conntrack``);
- coredns: ``/coredns`` as the entrypoint (kubeadm's Deployment passes only ``-conf``);
- pause: ``/pause``, user 65535, kubeadm's tag (also the containerd sandbox image);
- the pod network: kindnetd's source is not served by the Go module proxy, so kind's default
  CNI manifest is replaced by :data:`STATIC_CNI_MANIFEST`: a DaemonSet on the node rootfs that
  writes this node's CNI config (ptp + host-local over the node's podCIDR, the plugins kind's
  base carries) and a route to every other node's podCIDR via that node's address. The
  nodes share one layer-2 docker network, so routes are all kindnetd would do here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.kindbuild.imagearchive import ImageSpec

REGISTRY = "registry.k8s.io"
STATIC_CNI_IMAGE = "conntrack-harness/static-cni"
STATIC_CNI_SCRIPT = "/usr/local/bin/cth-static-cni"
CONTROL_PLANE = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")


@dataclass(frozen=True)
class Versions:
    kubernetes: str  # "v1.35.4"
    etcd: str  # "v3.6.6" (versions.toml) -> kubeadm's "3.6.6-0"
    coredns: str  # "v1.13.1"
    pause: str  # "3.10.1" (kubeadm's PauseVersion)

    @property
    def etcd_tag(self) -> str:
        return f"{self.etcd.removeprefix('v')}-0"


def coredns_image(version: str) -> str:
    """CoreDNS's image as kubeadm names it (the node image carries it, built here)."""
    return f"{REGISTRY}/coredns/coredns:{version}"


def image_names(v: Versions) -> dict[str, str]:
    """Component -> the image reference kubeadm (``config images list``) and kind use."""
    names = {c: f"{REGISTRY}/{c}:{v.kubernetes}" for c in (*CONTROL_PLANE, "kube-proxy")}
    names["etcd"] = f"{REGISTRY}/etcd:{v.etcd_tag}"
    names["coredns"] = coredns_image(v.coredns)
    names["pause"] = f"{REGISTRY}/pause:{v.pause}"
    names["static-cni"] = f"{STATIC_CNI_IMAGE}:{v.kubernetes}"
    return names


def missing_from_kubeadm(kubeadm_list: list[str], v: Versions) -> list[str]:
    """Images ``kubeadm config images list`` names that this node would not carry."""
    ours = set(image_names(v).values())
    return [i for i in kubeadm_list if i.strip() and i.strip() not in ours]


def specs(
    v: Versions,
    bins: Mapping[str, Path],
    rootfs_tar: Path,
    static_cni_script: Path,
) -> list[ImageSpec]:
    """Every image for the node. ``bins``: component binary name -> built file (the
    Kubernetes components, etcd, coredns, pause, kubectl)."""
    names = image_names(v)
    out = [
        ImageSpec(tags=(names[c],), files={f"/usr/local/bin/{c}": bins[c]})
        for c in (*CONTROL_PLANE, "etcd")
    ]
    out.append(
        ImageSpec(
            tags=(names["kube-proxy"],),
            files={"/usr/local/bin/kube-proxy": bins["kube-proxy"]},
            base_layers=(rootfs_tar,),
        )
    )
    out.append(
        ImageSpec(
            tags=(names["coredns"],),
            files={"/coredns": bins["coredns"]},
            entrypoint=("/coredns",),
        )
    )
    out.append(
        ImageSpec(
            tags=(names["pause"],),
            files={"/pause": bins["pause"]},
            entrypoint=("/pause",),
            user="65535:65535",
        )
    )
    out.append(
        ImageSpec(
            tags=(names["static-cni"],),
            files={"/usr/local/bin/kubectl": bins["kubectl"], STATIC_CNI_SCRIPT: static_cni_script},
            cmd=(STATIC_CNI_SCRIPT,),
            base_layers=(rootfs_tar,),
        )
    )
    return out


# kind renders /kind/manifests/default-cni.yaml as a Go template ({{ .PodSubnet }} etc.);
# this one needs none of its fields.
STATIC_CNI_MANIFEST = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: cth-static-cni
  namespace: kube-system
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: cth-static-cni
rules:
- apiGroups: [""]
  resources: [nodes]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: cth-static-cni
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: cth-static-cni
subjects:
- kind: ServiceAccount
  name: cth-static-cni
  namespace: kube-system
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: cth-static-cni
  namespace: kube-system
  labels: {app: cth-static-cni, k8s-app: cth-static-cni}
spec:
  selector:
    matchLabels: {app: cth-static-cni}
  template:
    metadata:
      labels: {app: cth-static-cni, k8s-app: cth-static-cni}
    spec:
      hostNetwork: true
      serviceAccountName: cth-static-cni
      priorityClassName: system-node-critical
      tolerations:
      - operator: Exists
      containers:
      - name: static-cni
        image: IMAGE
        imagePullPolicy: Never
        env:
        - name: NODE_NAME
          valueFrom:
            fieldRef: {fieldPath: spec.nodeName}
        securityContext:
          capabilities:
            add: [NET_ADMIN]
        volumeMounts:
        - {name: cni-cfg, mountPath: /etc/cni/net.d}
      volumes:
      - name: cni-cfg
        hostPath: {path: /etc/cni/net.d, type: DirectoryOrCreate}
"""

# kind reads /kind/manifests/default-storage.yaml and applies it. The harness uses no volumes:
# a default StorageClass, no provisioner (so nothing to pull).
STORAGE_MANIFEST = """\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
"""

STATIC_CNI_SH = """\
#!/bin/sh
# This node's CNI config over its podCIDR, and a route to every other node's podCIDR via
# that node's address (conntrack-harness's stand-in for kindnetd, see kindimages.py).
set -u
conf=/etc/cni/net.d/10-cth-static.conflist
sa=/var/run/secrets/kubernetes.io/serviceaccount  # explicit: no kubeconfig in the image
fmt='{"cniVersion":"1.0.0","name":"cth-static","plugins":[{"type":"ptp","ipMasq":false,'\\
'"mtu":1500,"ipam":{"type":"host-local","ranges":[[{"subnet":"%s"}]],'\\
'"routes":[{"dst":"0.0.0.0/0"}]}},{"type":"portmap","capabilities":{"portMappings":true}}]}'
jp='{range .items[*]}{.metadata.name}{" "}{.spec.podCIDR}{" "}'\\
'{.status.addresses[?(@.type=="InternalIP")].address}{"\\n"}{end}'
while :; do
  api="https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"
  if kubectl --request-timeout=10s --server="$api" \\
      --token="$(cat $sa/token)" --certificate-authority="$sa/ca.crt" \\
      get nodes -o jsonpath="$jp" > /tmp/nodes; then
    while read -r name cidr ip; do
      [ -n "$cidr" ] && [ -n "$ip" ] || continue
      if [ "$name" = "$NODE_NAME" ]; then
        want=$(printf "$fmt" "$cidr")
        if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
          printf '%s' "$want" > "$conf.tmp" && mv "$conf.tmp" "$conf" && echo "$conf: $cidr"
        fi
      else
        ip route replace "$cidr" via "$ip" || echo "route $cidr via $ip failed"
      fi
    done < /tmp/nodes
  fi
  sleep 5
done
"""


def static_cni_manifest(v: Versions) -> str:
    return STATIC_CNI_MANIFEST.replace("IMAGE", image_names(v)["static-cni"])
