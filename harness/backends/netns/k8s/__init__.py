"""The real upstream Kubernetes parts of the embedded (netns) cluster.

- :mod:`.pki`: the self-signed set-up (CA, serving and client certificates, kubeconfigs);
- :mod:`.controlplane`: etcd, kube-apiserver and kube-controller-manager in their own namespace;
- :mod:`.kubelet`: the harness as kubelet and CNI (Nodes, Services, Pods and their status);
- :mod:`.kubeproxy`, :mod:`.coredns`, :mod:`.nodecache`: the component runners.

Argument and config rendering is pure; the I/O lives in small context managers that journal
every process and file before it exists.
"""
