"""The netns backend: a Kubernetes node's real kernel data path, built from network namespaces.

One namespace per node and per pod, routed veth pairs (as Calico and the AWS VPC CNI do),
kube-proxy iptables-mode rules, real DNS (dnsmasq) and HTTP (nginx) servers in pods.
"""
