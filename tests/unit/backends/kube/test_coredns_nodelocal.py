from __future__ import annotations

import re

import pytest
from kube_fakes import HOSTS_COREFILE, KUBEADM_COREFILE, scenario

from cthcommon.errors import BackendError, BadInput
from harness.backends.kube import coredns, nodelocaldns
from harness.plan.phase import base_coredns, plan_phase
from harness.plan.types import CoreDNSPlan


def root_lines(text: str) -> list[str]:
    """Depth-1 directives of the root block."""
    out, depth, inside = [], 0, False
    for raw in text.splitlines():
        line = raw.strip()
        if depth == 0 and line in (".:53 {", ". {"):
            inside = True
        elif inside and depth == 1 and line and line != "}":
            out.append(line)
        depth += line.count("{") - line.count("}")
        if inside and depth == 0:
            inside = False
    return out


@pytest.mark.parametrize("corefile", [KUBEADM_COREFILE, HOSTS_COREFILE])
def test_cache_toggle(corefile: str) -> None:
    off = coredns.set_cache(corefile, False)
    assert not any(ln.startswith("cache") for ln in root_lines(off))
    assert coredns.set_cache(off, False) == off
    on = coredns.set_cache(off, True)
    assert sum(ln.startswith("cache") for ln in root_lines(on)) == 1
    assert len(root_lines(on)) == len(root_lines(corefile))


def test_cache_block_form_is_removed_whole() -> None:
    text = ".:53 {\n    cache {\n        success 9984 30\n    }\n    forward . 1.1.1.1\n}\n"
    assert coredns.set_cache(text, False) == ".:53 {\n    forward . 1.1.1.1\n}\n"


@pytest.mark.parametrize("corefile", [KUBEADM_COREFILE, HOSTS_COREFILE])
def test_max_concurrent(corefile: str) -> None:
    out = coredns.set_max_concurrent(corefile, 50)
    assert re.findall(r"max_concurrent (\d+)", out) == ["50"]
    assert out.count("{") == out.count("}")
    assert coredns.set_max_concurrent(out, 7).count("max_concurrent") == 1


def test_no_root_block_is_backend_error() -> None:
    with pytest.raises(BackendError):
        coredns.set_cache("example.org:53 {\n    whoami\n}\n", False)


def test_external_names_get_their_own_blocks() -> None:
    out = coredns.render_corefile(
        HOSTS_COREFILE,
        CoreDNSPlan(cache=True, max_concurrent=None, replicas=2),
        {"api.example.com": "203.0.113.80", "b.example.": "203.0.113.9"},
    )
    assert "api.example.com:53 {" in out
    assert "b.example:53 {" in out
    assert "203.0.113.80 api.example.com" in out
    # the root block keeps exactly one hosts plugin (its own): CoreDNS allows one per block
    assert sum(ln.startswith("hosts") for ln in root_lines(out)) == 1


def test_settings_fold_phase_changes() -> None:
    s = scenario()
    base = base_coredns(s)
    changed = plan_phase(s, next(p for p in s.phases if p.name == "coredns")).coredns
    assert (base.cache, base.replicas) == (True, 2)
    assert (changed.cache, changed.replicas) == (False, 3)


def test_restore_patch_removes_added_selector() -> None:
    saved = {"spec": {"replicas": 2, "template": {"spec": {}}}}
    patch = coredns.deployment_restore_patch(saved, "t")
    assert patch["spec"]["replicas"] == 2
    assert patch["spec"]["template"]["spec"]["nodeSelector"] is None


def test_restore_patch_removes_added_hostname_beside_a_saved_selector() -> None:
    saved = {"spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/os": "linux"}}}}}
    sel = coredns.deployment_restore_patch(saved, "t")["spec"]["template"]["spec"]["nodeSelector"]
    assert sel == {"kubernetes.io/hostname": None, "kubernetes.io/os": "linux"}


def test_nodelocal_corefile_values() -> None:
    text = nodelocaldns.corefile("k8s.test", "10.96.0.10")
    zones = re.findall(r"^(\S+):53 \{$", text, re.M)
    assert zones == ["k8s.test", "in-addr.arpa", "ip6.arpa", "."]
    assert text.count("bind 169.254.20.10 10.96.0.10") == 4
    assert text.count("health 169.254.20.10:8080") == 1
    assert "__PILLAR__LOCAL__DNS__" not in text
    assert "__PILLAR__DNS__SERVER__" not in text
    # node-cache fills the kube-dns-upstream address itself at start
    assert text.count(nodelocaldns.CLUSTER_DNS_PLACEHOLDER) == 4
    assert text.count("{") == text.count("}")


def test_nodelocal_daemonset_args() -> None:
    objs = nodelocaldns.manifests("r1", "cluster.local", "10.96.0.10")
    ds = next(o for o in objs if o["kind"] == "DaemonSet")
    c = ds["spec"]["template"]["spec"]["containers"][0]
    assert c["args"][:2] == ["-localip", "169.254.20.10,10.96.0.10"]
    assert c["args"][c["args"].index("-upstreamsvc") + 1] == "kube-dns-upstream"
    assert ds["spec"]["template"]["spec"]["hostNetwork"] is True
    assert all(o["metadata"]["labels"]["conntrack-harness/run-id"] == "r1" for o in objs)


def test_nodelocal_rejects_bad_ip() -> None:
    with pytest.raises(BadInput):
        nodelocaldns.corefile("cluster.local", "kube-dns")


def test_node_caches_rules_as_one_nft_table() -> None:
    from harness.dataplane.nodelocal import iptables_rules, nft_ruleset

    ips = ["169.254.20.10", "10.96.0.10"]
    text = nft_ruleset(ips, "cth_nl")
    rules = iptables_rules(ips)
    # one nft rule per iptables rule, each in a base chain at its iptables table's priority
    assert sum(ln.strip().endswith(("notrack", "accept")) for ln in text.splitlines()) == len(rules)
    assert "type filter hook prerouting priority raw;" in text
    assert "type filter hook output priority raw;" in text
    assert "ip daddr 10.96.0.10 udp dport 53 notrack" in text
    assert "ip saddr 169.254.20.10 tcp sport 53 accept" in text
    assert text.count("{") == text.count("}")


def test_stand_in_manifests_run_coredns_on_the_filled_corefile() -> None:
    s = nodelocaldns.StandIn("registry.k8s.io/coredns/coredns:v1.13.1", "10.96.0.11")
    objs = nodelocaldns.manifests("r1", "cluster.local", "10.96.0.10", stand_in=s)
    cm = next(o for o in objs if o["kind"] == "ConfigMap")
    assert "__PILLAR__" not in cm["data"]["Corefile"]
    assert "forward . 10.96.0.11 {" in cm["data"]["Corefile"]
    ds = next(o for o in objs if o["kind"] == "DaemonSet")
    pod = ds["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == s.image
    vol = next(v for v in pod["volumes"] if v["name"] == "config-volume")
    assert vol["configMap"]["items"] == [{"key": "Corefile", "path": "Corefile"}]
    # without a stand-in, node-cache's own manifest is untouched
    plain = nodelocaldns.manifests("r1", "cluster.local", "10.96.0.10")
    assert "annotations" not in next(o for o in plain if o["kind"] == "DaemonSet")["metadata"]
