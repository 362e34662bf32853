"""The wrapper module each component is built through (pure)."""

from __future__ import annotations

import pytest

from harness.upstream import recipes

# The shape of k8s.io/kubernetes' go.mod: staging modules required at v0.0.0, replaced by
# local directories, in a block; a comment; one single-line replace.
KUBERNETES_GO_MOD = """\
// This is a generated file. Do not edit directly.

module k8s.io/kubernetes

go 1.25.0

godebug default=go1.25

require (
\tgithub.com/spf13/cobra v1.10.0
\tk8s.io/api v0.0.0
\tk8s.io/client-go v0.0.0
\tk8s.io/kube-proxy v0.0.0 // indirect
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
\tk8s.io/client-go => ./staging/src/k8s.io/client-go // the client
\tk8s.io/kube-proxy => ./staging/src/k8s.io/kube-proxy
)

replace github.com/example/forked v1.2.3 => github.com/example/fork v1.2.4
"""

ETCD_SERVER_GO_MOD = """\
module go.etcd.io/etcd/server/v3

go 1.24

toolchain go1.24.9

require (
\tgo.etcd.io/etcd/api/v3 v3.6.6
\tgo.etcd.io/etcd/pkg/v3 v3.6.6
)

replace (
\tgo.etcd.io/etcd/api/v3 => ../api
\tgo.etcd.io/etcd/client/pkg/v3 => ../client/pkg
\tgo.etcd.io/etcd/pkg/v3 => ../pkg
)

// Bad imports are sometimes causing attempts to pull that code.
replace go.etcd.io/etcd => ./FORBIDDEN_DEPENDENCY
"""


def _lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def test_parse_go_mod_reads_blocks_single_lines_and_comments() -> None:
    info = recipes.parse_go_mod(KUBERNETES_GO_MOD)
    assert info.module == "k8s.io/kubernetes"
    assert info.go == "1.25.0"
    assert [(r.old, r.new) for r in info.replaces] == [
        ("k8s.io/api", "./staging/src/k8s.io/api"),
        ("k8s.io/client-go", "./staging/src/k8s.io/client-go"),
        ("k8s.io/kube-proxy", "./staging/src/k8s.io/kube-proxy"),
        ("github.com/example/forked", "github.com/example/fork"),
    ]
    fork = info.replaces[-1]
    assert (fork.old_version, fork.new_version, fork.local) == ("v1.2.3", "v1.2.4", False)
    assert all(r.local for r in info.replaces[:3])


def test_parse_go_mod_rejects_a_file_without_module() -> None:
    with pytest.raises(ValueError, match="no module"):
        recipes.parse_go_mod("go 1.22\n")
    with pytest.raises(ValueError, match="=>"):
        recipes.parse_go_mod("module x\nreplace a b\n")


@pytest.mark.parametrize(
    ("release", "staging"),
    [("v1.35.4", "v0.35.4"), ("v1.37.2", "v0.37.2"), ("v1.36.0-rc.1", "v0.36.0-rc.1")],
)
def test_staging_modules_are_published_at_v0_minor_patch(release: str, staging: str) -> None:
    assert recipes.staging_version(release) == staging


@pytest.mark.parametrize("bad", ["1.35.4", "v2.0.0", "v1.35", "latest"])
def test_staging_version_rejects_what_is_not_a_release(bad: str) -> None:
    with pytest.raises(ValueError, match="release"):
        recipes.staging_version(bad)


def test_kubernetes_wrapper_replaces_every_staging_module_with_its_published_version() -> None:
    r = recipes.kubernetes("v1.35.4", KUBERNETES_GO_MOD, ("kube-proxy", "kube-apiserver"))
    lines = _lines(r.go_mod)
    assert lines[0] == f"module {recipes.WRAPPER_MODULE}"
    assert "go 1.25.0" in lines
    assert "k8s.io/kubernetes v1.35.4" in lines
    for m in ("k8s.io/api", "k8s.io/client-go", "k8s.io/kube-proxy"):
        assert f"{m} => {m} v0.35.4" in lines
    assert "github.com/example/forked v1.2.3 => github.com/example/fork v1.2.4" in lines
    assert not any("./staging" in ln for ln in lines)
    assert r.packages == {
        "kube-proxy": "k8s.io/kubernetes/cmd/kube-proxy",
        "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
    }
    # the wrapper itself parses back as a go.mod
    again = recipes.parse_go_mod(r.go_mod)
    assert not any(x.local for x in again.replaces)


def test_kubernetes_binaries_carry_the_release_version_stamp() -> None:
    r = recipes.kubernetes("v1.37.2", KUBERNETES_GO_MOD, ("kube-proxy",))
    flags = r.ldflags["kube-proxy"]
    assert "-X k8s.io/component-base/version.gitVersion=v1.37.2" in flags
    assert "-X k8s.io/component-base/version.gitMinor=37" in flags
    assert "-X k8s.io/client-go/pkg/version.gitVersion=v1.37.2" in flags


def test_etcd_wrapper_requires_the_sibling_modules_at_the_same_tag() -> None:
    r = recipes.etcd("v3.6.6", ETCD_SERVER_GO_MOD)
    lines = _lines(r.go_mod)
    for m in ("go.etcd.io/etcd/server/v3", "go.etcd.io/etcd/api/v3", "go.etcd.io/etcd/pkg/v3"):
        assert f"{m} v3.6.6" in lines
    assert "go.etcd.io/etcd/client/pkg/v3 v3.6.6" in lines
    assert not any("=>" in ln for ln in lines), "no local or FORBIDDEN replace survives"
    assert r.packages == {"etcd": "go.etcd.io/etcd/server/v3"}


def test_coredns_is_its_module_root_with_no_replaces() -> None:
    r = recipes.coredns("v1.13.1", "module github.com/coredns/coredns\n\ngo 1.24.0\n")
    assert "github.com/coredns/coredns v1.13.1" in _lines(r.go_mod)
    assert "replace" not in r.go_mod
    assert r.packages == {"coredns": "github.com/coredns/coredns"}


def test_node_cache_builds_the_tag_by_its_pseudo_version() -> None:
    go_mod = "module k8s.io/dns\n\ngo 1.22\n\nreplace k8s.io/api => k8s.io/api v0.28.14\n"
    pseudo = "v0.0.0-20250101120000-0123456789ab"
    r = recipes.node_cache("1.26.4", pseudo, go_mod)
    lines = _lines(r.go_mod)
    assert f"k8s.io/dns {pseudo}" in lines
    assert "k8s.io/api => k8s.io/api v0.28.14" in lines
    assert "-X k8s.io/dns/pkg/version.VERSION=1.26.4" in r.ldflags["node-cache"]
    assert r.version == "1.26.4"
    with pytest.raises(ValueError, match="module version"):
        recipes.node_cache("1.26.4", "1.26.4", go_mod)


def test_tools_go_imports_each_package_once() -> None:
    r = recipes.Recipe("c", "v1", "m", "v1", {"a": "m/cmd/a", "b": "m/cmd/a", "c": "m/x"}, "")
    text = r.tools_go()
    assert text.startswith("//go:build tools\n")
    assert text.count('_ "m/cmd/a"') == 1
    assert '_ "m/x"' in text
    assert r.tools_go(["c"]).count('_ "') == 1


def test_for_component_rejects_an_unknown_component() -> None:
    with pytest.raises(ValueError, match="unknown"):
        recipes.for_component("kube-dns", "v1", "v1", "module x\n", ())
