"""Kubernetes backends: kind (created per run) and an existing cluster (kubeconfig).

They share one workload (:mod:`.cluster`) rendered purely from the scenario (:mod:`.workload`,
:mod:`.dnsconfig`, :mod:`.coredns`, :mod:`.nodelocaldns`, :mod:`.tuner`, :mod:`.kindconfig`) and
differ only in cluster lifecycle and in how they reach a node's network namespace
(:mod:`.kind`, :mod:`.kubeconfig`). Nothing is imported here, so that kind's image package
(:mod:`harness.kindbuild`) can use this package's CLI seams without importing a backend.
"""
