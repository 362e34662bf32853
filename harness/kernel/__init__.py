"""Thin I/O layer over the Linux kernel: namespaces, sysctls, conntrack counters, kmsg."""
