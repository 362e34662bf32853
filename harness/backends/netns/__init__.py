"""The netns backend: a Kubernetes node's real kernel data path, built from network namespaces.

One namespace per node and per pod, routed veth pairs (as Calico and the AWS VPC CNI do), and
the real upstream Kubernetes parts (:mod:`.k8s`): a control plane in its own namespace, real
kube-proxy on every node, real CoreDNS in the CoreDNS pods, node-cache as NodeLocal DNSCache;
the harness plays kubelet and CNI. The "internet" upstream resolver (dnsmasq) and the HTTP
server (nginx) are ordinary servers in their namespaces.
"""
