"""Kubernetes backends: kind (created per run) and an existing cluster (kubeconfig).

They share one workload (:mod:`.cluster`) rendered purely from the scenario (:mod:`.workload`,
:mod:`.dnsconfig`, :mod:`.coredns`, :mod:`.nodelocaldns`, :mod:`.tuner`, :mod:`.kindconfig`) and
differ only in cluster lifecycle and in how they reach a node's network namespace.
"""

from harness.backends.kube.cluster import Images, KubeCluster
from harness.backends.kube.kind import KindBackend, KindSettings
from harness.backends.kube.kubeconfig import KubeconfigBackend, KubeconfigSettings

__all__ = [
    "Images",
    "KindBackend",
    "KindSettings",
    "KubeCluster",
    "KubeconfigBackend",
    "KubeconfigSettings",
]
