"""Naming the module version the Go proxy refused, from go's own error text (pure)."""

from __future__ import annotations

from harness.upstream.errors import refusal

# as `go list -m -json k8s.io/dns@1.26.4` printed it on this machine, with the proxy's host
# replaced by a neutral example (the parser takes whatever GOPROXY names)
DNS_TAG = (
    "go: k8s.io/dns@1.26.4: invalid version: reading "
    "https://proxy.example/k8s.io/dns/@v/1.26.4.info: 403 Forbidden\n"
    "\tserver response: This module version is not available.\n"
)
DNS_LIST = (
    "go: module k8s.io/dns: reading https://proxy.example/k8s.io/dns/@v/list: "
    "403 Forbidden\n\tserver response: This module version is not available.\n"
)


def test_a_refused_version_is_named_exactly() -> None:
    e = refusal("node-cache", "go: downloading x\n" + DNS_TAG)
    assert e is not None
    assert (e.module, e.version, e.status) == ("k8s.io/dns", "1.26.4", "403")
    assert "k8s.io/dns@1.26.4 (403)" in str(e)
    assert e.exit_code == 3


def test_a_refused_version_list_names_the_module() -> None:
    e = refusal("node-cache", DNS_LIST)
    assert e is not None
    assert (e.module, e.version) == ("k8s.io/dns", "(version list)")


def test_upper_case_module_paths_are_decoded() -> None:
    text = (
        "reading https://proxy.example/github.com/!azure/go-ansiterm/@v/"
        "v0.0.0-20230124172434-306776ec8161.zip: 410 Gone"
    )
    e = refusal("kubernetes", text)
    assert e is not None
    assert e.module == "github.com/Azure/go-ansiterm"
    assert e.version == "v0.0.0-20230124172434-306776ec8161"


def test_other_failures_are_not_refusals() -> None:
    assert refusal("etcd", "main.go:3:2: undefined: foo\n") is None
    assert refusal("etcd", "reading https://proxy.example/a/b/@v/v1.0.0.zip: 500 Oops") is None
