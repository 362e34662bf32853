from __future__ import annotations

import re
from fractions import Fraction

import pytest

from harness.errors import BadInput
from harness.kubeproxy.rules import (
    Endpoint,
    ServicePort,
    probability,
    render_filter,
    render_nat,
    sep_chain,
    svc_chain,
)

CIDR = "10.244.0.0/16"


def dns_service(n: int) -> ServicePort:
    eps = tuple(Endpoint(f"10.244.2.{i + 2}", 53) for i in range(n))
    return ServicePort("kube-system", "kube-dns", "dns", "udp", "10.96.0.10", 53, eps)


def chain_rules(text: str, chain: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith(f"-A {chain} ")]


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_endpoint_probabilities_make_uniform_choice(n: int) -> None:
    text = render_nat([dns_service(n)], cluster_cidr=CIDR)
    svc = svc_chain(dns_service(n))
    jumps = [r for r in chain_rules(text, svc) if "KUBE-SEP-" in r]
    assert len(jumps) == n
    probs = [
        Fraction(m.group(1)).limit_denominator(1000)
        if (m := re.search(r"--probability (\S+)", r))
        else Fraction(1)
        for r in jumps
    ]
    # chance that endpoint i is picked = p_i * prod(1 - p_j for j < i): must be 1/n each
    remaining = Fraction(1)
    for p in probs:
        assert remaining * p == Fraction(1, n)
        remaining *= 1 - p
    assert remaining == 0
    assert "--probability" not in jumps[-1]


def test_probability_format_matches_kube_proxy() -> None:
    assert probability(0, 3) == "0.3333333333"
    assert probability(1, 3) == "0.5000000000"


def test_chain_names_are_stable_hashes_and_distinct() -> None:
    sp = dns_service(2)
    a, b = (sep_chain(sp, ep) for ep in sp.endpoints)
    assert svc_chain(sp) == svc_chain(dns_service(2))
    assert a != b
    for name in (svc_chain(sp), a, b):
        assert re.fullmatch(r"KUBE-(SVC|SEP)-[A-Z2-7]{16}", name)
        assert len(name) <= 28  # iptables chain-name limit


def test_masquerade_all_marks_every_packet_otherwise_only_outside_cluster() -> None:
    sp = dns_service(1)
    all_ = chain_rules(render_nat([sp], cluster_cidr=CIDR, masquerade_all=True), svc_chain(sp))
    some = chain_rules(render_nat([sp], cluster_cidr=CIDR, masquerade_all=False), svc_chain(sp))
    assert any("KUBE-MARK-MASQ" in r and "! -s" not in r for r in all_)
    assert any(f"! -s {CIDR}" in r and "KUBE-MARK-MASQ" in r for r in some)


def test_dnat_targets_each_endpoint_and_hairpin_is_masqueraded() -> None:
    sp = dns_service(3)
    text = render_nat([sp], cluster_cidr=CIDR)
    for ep in sp.endpoints:
        rules = chain_rules(text, sep_chain(sp, ep))
        assert f"-s {ep.ip}/32 -j KUBE-MARK-MASQ" in rules[0]
        assert rules[1].endswith(f"DNAT --to-destination {ep.ip}:{ep.port}")


def test_every_jumped_chain_is_declared_and_table_commits() -> None:
    text = render_nat([dns_service(2)], cluster_cidr=CIDR)
    declared = set(re.findall(r"^:(\S+) ", text, re.M))
    jumped = set(re.findall(r"-j (KUBE-\S+|CTH-\S+)", text))
    assert jumped <= declared
    assert text.startswith("*nat\n")
    assert text.rstrip().endswith("COMMIT")
    assert "KUBE-POSTROUTING" in declared
    assert "MASQUERADE" in text


def test_service_without_endpoints_returns_instead_of_jumping() -> None:
    text = render_nat([dns_service(0)], cluster_cidr=CIDR)
    assert "has no endpoints" in text
    assert not chain_rules(text, svc_chain(dns_service(0)))[1:]


@pytest.mark.parametrize(
    ("field", "sp"),
    [
        ("protocol", ServicePort("a", "b", "c", "sctp", "10.96.0.1", 53)),
        ("cluster_ip", ServicePort("a", "b", "c", "udp", "not-an-ip", 53)),
        ("port", ServicePort("a", "b", "c", "udp", "10.96.0.1", 70000)),
    ],
)
def test_bad_service_is_rejected_naming_the_field(field: str, sp: ServicePort) -> None:
    with pytest.raises(BadInput) as e:
        render_nat([sp], cluster_cidr=CIDR)
    assert e.value.field == field


def test_filter_drops_invalid_and_accepts_tracked() -> None:
    text = render_filter(cluster_cidr=CIDR)
    assert "--ctstate INVALID -j DROP" in text
    assert "RELATED,ESTABLISHED -j ACCEPT" in text
