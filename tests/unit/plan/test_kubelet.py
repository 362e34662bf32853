"""kubelet's resolv.conf rules and the names a lookup goes to (pure)."""

from __future__ import annotations

import pytest

from cthcommon.errors import BadInput
from cthcommon.resolvconf import ResolvConf
from harness.plan.kubelet import absolute_name, expand_names, pod_dns
from harness.scenario.model import DNSConfig, DNSOption

DEFAULT = ("default.svc.cluster.local", "svc.cluster.local", "cluster.local")


def dns(**kw: object) -> DNSConfig:
    return DNSConfig.model_validate(kw)


def test_cluster_first_is_what_kubelet_writes() -> None:
    p = pod_dns(
        dns(),
        namespace="default",
        domain="cluster.local",
        extra_options=[("single-request-reopen", None)],
    )
    assert p.resolv_conf("10.96.0.10").render() == (
        "nameserver 10.96.0.10\n"
        "search default.svc.cluster.local svc.cluster.local cluster.local\n"
        "options ndots:5 single-request-reopen\n"
    )


def test_cluster_first_merges_dns_config_after_kubelets_own() -> None:
    p = pod_dns(
        dns(
            nameservers=["10.0.0.9", "cluster-dns"],
            searches=["corp.example", "svc.cluster.local"],
            options=[{"name": "timeout", "value": "2"}],
        ),
        namespace="default",
        domain="cluster.local",
    )
    assert p.nameservers == ("cluster-dns", "10.0.0.9")
    assert p.searches == (*DEFAULT, "corp.example")
    assert p.options == (("ndots", "5"), ("timeout", "2"))


def test_policy_none_is_the_dns_config_alone() -> None:
    p = pod_dns(
        dns(policy="None", nameservers=["10.0.0.9"], options=[{"name": "ndots", "value": "1"}]),
        namespace="default",
        domain="cluster.local",
    )
    assert (p.nameservers, p.searches, p.options) == (("10.0.0.9",), (), (("ndots", "1"),))


def test_nodelocal_takes_the_cluster_dns_place_and_literal_servers_stay() -> None:
    p = pod_dns(
        dns(nameservers=["10.0.0.9"]), namespace="default", domain="cluster.local", nodelocal=True
    )
    assert p.nameservers == ("nodelocal", "10.0.0.9")
    assert p.addresses("10.96.0.10") == ("169.254.20.10", "10.0.0.9")
    none = pod_dns(
        dns(policy="None", nameservers=["10.0.0.9"]),
        namespace="default",
        domain="cluster.local",
        nodelocal=True,
    )
    assert none.nameservers == ("nodelocal", "10.0.0.9")


def test_at_most_three_nameservers_as_kubelet_keeps() -> None:
    p = pod_dns(
        dns(nameservers=["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
        namespace="default",
        domain="cluster.local",
    )
    assert p.nameservers == ("cluster-dns", "10.0.0.1", "10.0.0.2")


def test_remediation_options_override_by_name() -> None:
    p = pod_dns(
        dns(options=[DNSOption(name="ndots", value="5").model_dump()]),
        namespace="default",
        domain="cluster.local",
        extra_options=[("ndots", "2")],
    )
    conf = p.resolv_conf("10.96.0.10")
    assert conf.ndots == 2
    assert ResolvConf.parse(conf.render()) == conf


def test_too_many_searches_is_bad_input() -> None:
    with pytest.raises(BadInput) as e:
        pod_dns(
            dns(policy="None", searches=[f"d{i}.example" for i in range(33)]),
            namespace="default",
            domain="cluster.local",
        )
    assert e.value.field == "cluster.dns_config.searches"


@pytest.mark.parametrize(
    ("name", "fqdn"),
    [
        ("http-server", "http-server.default.svc.cluster.local."),
        ("kube-dns.kube-system", "kube-dns.kube-system.svc.cluster.local."),
        ("http-server.default.svc.cluster.local", "http-server.default.svc.cluster.local."),
        ("api.example.com", "api.example.com."),
        ("api.example", "api.example."),  # an external name with one dot is not a namespace
        ("www.example.org", "www.example.org."),
        ("cluster.local", "cluster.local."),
        ("x.default.svc.cluster.local.", "x.default.svc.cluster.local."),
    ],
)
def test_fqdn_rule(name: str, fqdn: str) -> None:
    external = {"api.example.com": "203.0.113.80", "api.example": "203.0.113.81"}
    got = absolute_name(name, namespace="default", domain="cluster.local", external=external)
    assert got == fqdn


def test_expand_names() -> None:
    assert expand_names(["a", "b"], 10) == (("a", "b"), 2, False)
    assert expand_names(["u{n}.x", "a"], 2) == (("u0.x", "a", "u1.x", "a"), 2, True)
    assert expand_names(["u{n}.x"], 0) == (("u0.x",), 1, True)  # at least one index
