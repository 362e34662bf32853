"""What `upstream build` builds, and in which order (pure)."""

from __future__ import annotations

import pytest

from cthcommon.errors import BadInput
from harness.upstream import BINARY_COMPONENT, Release, releases
from harness.upstream.build import plan, selection, without_blocked

OLD = Release("v1.35.4", "v3.6.6", "v1.13.1", "1.26.4")
NEW = Release("v1.37.2", "v3.7.0", "v1.14.6", "1.26.4")


def _nothing(c: str, v: str, b: str) -> bool:
    return False


def test_an_empty_cache_builds_the_control_plane_parts_first() -> None:
    tasks = plan([OLD], set(BINARY_COMPONENT), _nothing)
    assert [(t.component, t.version, t.binaries) for t in tasks] == [
        ("etcd", "v3.6.6", ("etcd",)),
        ("coredns", "v1.13.1", ("coredns",)),
        ("kubernetes", "v1.35.4", ("kube-apiserver", "kube-controller-manager", "kube-proxy")),
        ("node-cache", "1.26.4", ("node-cache",)),
        ("kubernetes", "v1.35.4", ("kubelet", "kubeadm", "kube-scheduler", "kubectl")),
    ]


def test_only_what_is_missing_is_planned() -> None:
    have = {("etcd", "v3.6.6", "etcd"), ("kubernetes", "v1.35.4", "kube-apiserver")}
    tasks = plan([OLD], set(BINARY_COMPONENT), lambda c, v, b: (c, v, b) in have)
    built = {(t.component, b) for t in tasks for b in t.binaries}
    assert ("etcd", "etcd") not in built
    assert ("kubernetes", "kube-apiserver") not in built
    assert ("kubernetes", "kube-proxy") in built
    assert plan([OLD], set(BINARY_COMPONENT), lambda c, v, b: True) == []


def test_two_releases_share_what_they_pin_alike() -> None:
    tasks = plan([OLD, NEW], {"kube-proxy", "node-cache", "etcd"}, _nothing)
    assert [(t.component, t.version) for t in tasks] == [
        ("etcd", "v3.6.6"),
        ("etcd", "v3.7.0"),
        ("kubernetes", "v1.35.4"),
        ("kubernetes", "v1.37.2"),
        ("node-cache", "1.26.4"),  # once: both releases pin the same tag
    ]
    assert all(t.binaries == ("kube-proxy",) for t in tasks if t.component == "kubernetes")


def test_selection_takes_components_and_binaries() -> None:
    assert selection(["kube-proxy"]) == {"kube-proxy"}
    assert selection(["etcd", "kubernetes"]) >= {"etcd", "kube-apiserver", "kubelet"}
    assert selection(None) == set(BINARY_COMPONENT)
    with pytest.raises(BadInput, match="--component") as e:
        selection(["kube-dns"])
    assert "kube-proxy" in str(e.value)


def test_the_versions_file_pins_two_kubernetes_releases_with_their_kubeadm_parts() -> None:
    rels = releases()
    assert len(rels) >= 2
    for r in rels.values():
        assert r.kubernetes.startswith("v1.")
        assert r.etcd.startswith("v3.")
        assert r.coredns.startswith("v1.")


def test_a_blocked_part_is_left_out_unless_named() -> None:
    blocked = Release("v1.35.4", "v3.6.6", "v1.13.1", "1.26.4", "", "proxy says 403")
    every = set(BINARY_COMPONENT)
    wanted, notes = without_blocked([blocked], every, None)
    assert wanted == every - {"node-cache"}
    assert len(notes) == 1
    assert "proxy says 403" in notes[0]
    assert "--component node-cache" in notes[0]
    assert without_blocked([blocked], every, ["node-cache"]) == (every, [])
    assert without_blocked([blocked], {"etcd"}, ["etcd"]) == ({"etcd"}, [])
    assert without_blocked([OLD], every, None) == (every, [])
