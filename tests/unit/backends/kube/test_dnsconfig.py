from __future__ import annotations

import pytest
from kube_fakes import scenario

from cthcommon.errors import BadInput
from cthcommon.resolvconf import ResolvConf, search_candidates
from harness.backends.kube.dnsconfig import NamespaceMap, PodDNSConfig, pod_dns
from harness.backends.kube.names import NODELOCAL_IP
from harness.plan.kubelet import absolute_name
from harness.plan.phase import plan_phase
from harness.scenario.model import Phase, Scenario

NS = NamespaceMap("default", "cth-r1", "cluster.local")


def client_pod_dns(s: Scenario, p: Phase, nsmap: NamespaceMap, ip: str) -> PodDNSConfig:
    """The phase plan's pod DNS, as the kube backend renders it."""
    return pod_dns(plan_phase(s, p).pod_dns, nsmap, ip)


def phase(s: Scenario, name: str):  # type: ignore[no-untyped-def]
    return next(p for p in s.phases if p.name == name)


def test_baseline_is_kubelets_cluster_first_without_host_extras(scn: Scenario) -> None:
    dns = client_pod_dns(scn, phase(scn, "baseline"), NS, "10.96.0.10")
    m = dns.manifest()
    assert m["dnsPolicy"] == "None"
    assert m["dnsConfig"]["nameservers"] == ["10.96.0.10"]
    assert m["dnsConfig"]["searches"] == [
        "cth-r1.svc.cluster.local",
        "svc.cluster.local",
        "cluster.local",
    ]
    assert m["dnsConfig"]["options"] == [{"name": "ndots", "value": "5"}]
    conf = dns.resolv_conf()
    # the run's http-server resolves on the second pair, as in the scenario's own namespace
    assert search_candidates("http-server", conf)[0] == "http-server.cth-r1.svc.cluster.local."


def test_resolver_option_is_added_and_rendered(scn: Scenario) -> None:
    conf = client_pod_dns(scn, phase(scn, "reopen"), NS, "10.96.0.10").resolv_conf()
    assert conf.single_request_reopen
    assert conf.ndots == 5
    assert ResolvConf.parse(conf.render()) == conf


def test_option_overrides_by_name() -> None:
    s = scenario(
        phases=[
            {
                "name": "p",
                "remediations": [
                    {"kind": "resolver-option", "options": [{"name": "ndots", "value": "2"}]}
                ],
            }
        ]
    )
    dns = client_pod_dns(s, s.phases[0], NS, "10.96.0.10")
    assert dict(dns.options) == {"ndots": "2"}


def test_nodelocal_replaces_cluster_dns(scn: Scenario) -> None:
    dns = client_pod_dns(scn, phase(scn, "nodelocal"), NS, "10.96.0.10")
    assert dns.nameservers == (NODELOCAL_IP,)


def test_explicit_searches_are_translated_to_the_run_namespace() -> None:
    # ClusterFirst: kubelet appends dnsConfig.searches to its own list, duplicates dropped
    s = scenario(
        cluster={"dns_config": {"searches": ["default.svc.cluster.local", "corp.example"]}}
    )
    dns = client_pod_dns(s, s.phases[0], NS, "10.96.0.10")
    assert dns.searches == (
        "cth-r1.svc.cluster.local",
        "svc.cluster.local",
        "cluster.local",
        "corp.example",
    )
    none = scenario(
        cluster={
            "dns_config": {
                "policy": "None",
                "searches": ["default.svc.cluster.local", "corp.example"],
            }
        }
    )
    dns = client_pod_dns(none, none.phases[0], NS, "10.96.0.10")
    assert dns.searches == ("cth-r1.svc.cluster.local", "corp.example")


def test_too_many_searches_is_bad_input() -> None:
    s = scenario(cluster={"dns_config": {"searches": [f"d{i}.example" for i in range(33)]}})
    with pytest.raises(BadInput) as e:
        client_pod_dns(s, s.phases[0], NS, "10.96.0.10")
    assert e.value.field == "cluster.dns_config.searches"


@pytest.mark.parametrize(
    ("name", "translated", "fqdn"),
    [
        ("http-server", "http-server", "http-server.cth-r1.svc.cluster.local."),
        ("http-server.default", "http-server.cth-r1", "http-server.cth-r1.svc.cluster.local."),
        (
            "http-server.default.svc.cluster.local",
            "http-server.cth-r1.svc.cluster.local",
            "http-server.cth-r1.svc.cluster.local.",
        ),
        ("http-server.other", "http-server.other", "http-server.other.svc.cluster.local."),
        ("api.example.com", "api.example.com", "api.example.com."),
        ("x.default.", "x.cth-r1.", "x.cth-r1."),
    ],
)
def test_names(name: str, translated: str, fqdn: str) -> None:
    assert NS.name(name) == translated
    # the FQDN rule runs in the scenario's namespace (the phase plan), then the kube backend
    # maps the absolute name onto its run namespace
    absolute = absolute_name(
        name, namespace="default", domain="cluster.local", external={"api.example.com": "x"}
    )
    assert NS.name(absolute) == fqdn
