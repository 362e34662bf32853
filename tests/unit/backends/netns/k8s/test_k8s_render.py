"""Pure rendering of the real components' argv and configs (no root, no processes)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cthcommon.errors import BackendError, BadInput
from harness.backends.netns.k8s import controlplane as cp
from harness.backends.netns.k8s import coredns, kubeproxy, nodecache, pki
from harness.backends.netns.k8s.kubelet import (
    kube_dns_service,
    node,
    pod,
    pod_status,
    slice_endpoints,
)
from harness.dataplane.nodelocal import iptables_rules
from harness.kubeapi.client import ApiError, resource_path
from harness.kubeapi.wait import wait_for

P = Path("/w")


def test_kube_proxy_config_leaves_conntrack_sysctls_alone() -> None:
    s = kubeproxy.KubeProxySettings(mode="nftables", masquerade_all=True)
    cfg = yaml.safe_load(kubeproxy.config("node-1", P / "kp.kubeconfig", s))
    ct = cfg["conntrack"]
    assert ct["maxPerCore"] == 0
    for key in ("tcpEstablishedTimeout", "tcpCloseWaitTimeout", "udpTimeout", "udpStreamTimeout"):
        assert ct[key] == "0s", key
    assert ct["tcpBeLiberal"] is False
    assert cfg["mode"] == "nftables"
    assert cfg["hostnameOverride"] == "node-1"
    assert cfg["clusterCIDR"] == "10.244.0.0/16"
    assert cfg["iptables"]["masqueradeAll"] is True
    assert cfg["nftables"]["masqueradeAll"] is True
    assert cfg["clientConnection"]["kubeconfig"] == "/w/kp.kubeconfig"
    argv = kubeproxy.argv(P / "kube-proxy", P / "c.yaml", "node-1")
    assert "--hostname-override=node-1" in argv
    assert "--config=/w/c.yaml" in argv


def test_kube_proxy_mode_is_checked() -> None:
    with pytest.raises(BadInput, match=r"cluster\.kube_proxy\.mode"):
        kubeproxy.KubeProxySettings(mode="ipvs")


def test_kubeadm_corefile_and_credentials() -> None:
    text = coredns.kubeadm_corefile("cluster.local")
    assert "kubernetes cluster.local in-addr.arpa ip6.arpa {" in text
    assert "prometheus :9153" in text
    assert "forward . /etc/resolv.conf {" in text
    assert "    cache 30 {\n       disable success cluster.local\n" in text
    out = coredns.with_kubeconfig(text, P / "coredns.kubeconfig")
    lines = out.splitlines()
    i = lines.index("    kubernetes cluster.local in-addr.arpa ip6.arpa {")
    assert lines[i + 1] == "       kubeconfig /w/coredns.kubeconfig"
    # nothing else changed
    assert [ln for ln in lines if "kubeconfig" not in ln] == text.splitlines()


def test_kubernetes_plugin_without_block_gets_one() -> None:
    out = coredns.with_kubeconfig(".:53 {\n    kubernetes cluster.local\n}\n", P / "k")
    assert out == ".:53 {\n    kubernetes cluster.local {\n       kubeconfig /w/k\n    }\n}\n"


def test_corefile_without_kubernetes_plugin_is_an_error() -> None:
    with pytest.raises(BackendError, match="no kubernetes plugin"):
        coredns.with_kubeconfig(".:53 {\n    forward . 1.2.3.4\n}\n", P / "k")


def test_coredns_counts_sum_every_series() -> None:
    text = """# HELP coredns_dns_requests_total Counter of DNS requests made per zone, protocol and family.
# TYPE coredns_dns_requests_total counter
coredns_dns_requests_total{family="1",proto="udp",server="dns://:53",type="A",view="",zone="."} 7
coredns_dns_requests_total{family="1",proto="tcp",server="dns://:53",type="AAAA",view="",zone="."} 3
# HELP coredns_dns_responses_total Counter of response status codes.
# TYPE coredns_dns_responses_total counter
coredns_dns_responses_total{plugin="kubernetes",rcode="NOERROR",server="dns://:53",view="",zone="."} 6
coredns_dns_responses_total{plugin="",rcode="NXDOMAIN",server="dns://:53",view="",zone="."} 2
"""
    c = coredns.parse_counts(text)
    assert (c.requests, c.responses) == (10, 8)


def test_node_cache_corefile_keeps_node_cache_placeholders() -> None:
    text = nodecache.base_corefile("cluster.local", "10.96.0.10")
    assert "cluster.local:53 {" in text
    assert "bind 169.254.20.10 10.96.0.10" in text
    assert "forward . __PILLAR__CLUSTER__DNS__ {" in text
    assert "forward . __PILLAR__UPSTREAM__SERVERS__" in text
    assert "__PILLAR__DNS__SERVER__" not in text
    assert "__PILLAR__LOCAL__DNS__" not in text
    argv = nodecache.argv(P / "nc", ["169.254.20.10", "10.96.0.10"], P / "b", P / "c", P / "p")
    assert "-setupinterface=false" in argv
    assert argv[argv.index("-localip") + 1] == "169.254.20.10,10.96.0.10"
    assert argv[argv.index("-upstreamsvc") + 1] == "kube-dns-upstream"
    assert nodecache.env("10.96.0.11") == {"KUBE_DNS_UPSTREAM_SERVICE_HOST": "10.96.0.11"}


def test_control_plane_argv() -> None:
    cfg = cp.ControlPlaneConfig(run_id="abc123", ns="cth-abc123-cp")
    p = pki.Pki(P / "pki")
    api = cp.apiserver_argv(P / "kube-apiserver", cfg, p, P / "certs")
    assert "--advertise-address=172.18.0.2" in api
    assert "--service-cluster-ip-range=10.96.0.0/16" in api
    assert f"--client-ca-file={p.ca}" in api
    assert "--etcd-servers=http://127.0.0.1:2379" in api
    kcm = cp.controller_manager_argv(P / "kcm", cfg, p, P / "certs")
    ctl = next(a for a in kcm if a.startswith("--controllers="))
    assert "endpointslice" in ctl.split("=", 1)[1].split(",")
    assert "--use-service-account-credentials=true" in kcm
    etcd = cp.etcd_argv(P / "etcd", P / "data")
    assert "--listen-client-urls=http://127.0.0.1:2379" in etcd
    assert cfg.server == "https://172.18.0.2:6443"


def test_pki_names() -> None:
    assert pki.ADMIN.subject() == "/O=system:masters/CN=kubernetes-admin"
    assert pki.KUBE_PROXY.subject() == "/CN=system:kube-proxy"
    sans = pki.apiserver_sans("172.18.0.2", "10.96.0.1", "cluster.local")
    assert "IP:172.18.0.2" in sans
    assert "IP:10.96.0.1" in sans
    assert "DNS:kubernetes.default.svc.cluster.local" in sans
    kc = yaml.safe_load(pki.kubeconfig("https://x:6443", P / "ca", P / "c", P / "k", "u"))
    assert kc["clusters"][0]["cluster"]["server"] == "https://x:6443"
    assert kc["users"][0]["user"]["client-key"] == "/w/k"


def test_pki_made_by_openssl_verifies(tmp_path: Path) -> None:
    """Runs the openssl CLI into a temporary directory (no root, no kernel state)."""
    import subprocess

    p = pki.make_pki(
        tmp_path,
        server="https://172.18.0.2:6443",
        advertise_ip="172.18.0.2",
        service_ip="10.96.0.1",
        cluster_domain="cluster.local",
    )
    for who in pki.IDENTITIES:
        out = subprocess.run(
            ["openssl", "verify", "-CAfile", str(p.ca), str(p.cert(who.name))],
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stderr
    text = subprocess.run(
        ["openssl", "x509", "-in", str(p.cert("apiserver")), "-noout", "-ext", "subjectAltName"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "172.18.0.2" in text
    assert p.sa_pub.read_text().startswith("-----BEGIN PUBLIC KEY-----")


def test_resource_paths() -> None:
    assert resource_path("v1", "Pod", "default", "a") == "/api/v1/namespaces/default/pods/a"
    assert resource_path("v1", "Node", None, "n") == "/api/v1/nodes/n"
    assert (
        resource_path("discovery.k8s.io/v1", "EndpointSlice", "kube-system")
        == "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices"
    )
    with pytest.raises(BackendError, match="namespaced"):
        resource_path("v1", "Pod", None, "a")
    with pytest.raises(BackendError, match="does not know"):
        resource_path("v9", "Thing")


def test_api_error_carries_status_and_reason() -> None:
    e = ApiError("create Pod/x", 422, {"reason": "Invalid", "message": "spec bad"})
    assert e.status == 422
    assert "Invalid" in str(e)
    assert "spec bad" in str(e)


def test_kubelet_objects() -> None:
    n = node("node-1", "172.18.0.11", "10.244.1.0/24", "abc123")
    assert n["metadata"]["labels"]["conntrack-harness/run-id"] == "abc123"
    assert n["spec"]["podCIDR"] == "10.244.1.0/24"
    svc = kube_dns_service("10.96.0.10", "abc123")
    ports = {(p["name"], p["protocol"], p["port"]) for p in svc["spec"]["ports"]}
    assert ports == {("dns", "UDP", 53), ("dns-tcp", "TCP", 53), ("metrics", "TCP", 9153)}
    assert svc["spec"]["clusterIP"] == "10.96.0.10"
    assert svc["spec"]["selector"] == {"k8s-app": "kube-dns"}
    p = pod("coredns-0", "kube-system", "node-2", "abc123", role="coredns", labels={"a": "b"})
    assert p["spec"]["nodeName"] == "node-2"
    assert p["metadata"]["labels"]["a"] == "b"
    st = pod_status("10.244.2.2", "172.18.0.12", ready=False)["status"]
    assert st["podIP"] == "10.244.2.2"
    assert st["phase"] == "Running"
    assert {c["type"]: c["status"] for c in st["conditions"]}["Ready"] == "False"


def test_slice_endpoints() -> None:
    slices = [
        {"endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}}]},
        {"endpoints": [{"addresses": ["10.0.0.2"], "conditions": {"ready": False}}]},
        {"endpoints": None},
    ]
    assert slice_endpoints(slices) == {"10.0.0.1": True, "10.0.0.2": False}


def test_wait_for_times_out_with_last_error() -> None:
    now = [0.0]

    def clock() -> float:
        return now[0]

    def sleep(s: float) -> None:
        now[0] += s

    def probe() -> str | None:
        raise OSError("connection refused")

    with pytest.raises(BackendError, match="last probe: OSError: connection refused"):
        wait_for("thing", probe, timeout_s=1, clock=clock, sleep=sleep)


def test_wait_for_returns_when_ready() -> None:
    answers = iter(["not yet", None])
    wait_for("thing", lambda: next(answers), timeout_s=5, sleep=lambda s: None)


def test_endpoints_in_rules() -> None:
    from harness.backends.netns.k8s.cluster import endpoints_in_rules

    rules = "-A KUBE-SEP-X -p udp -j DNAT --to-destination 10.244.2.2:53\n"
    assert endpoints_in_rules(rules, {"10.244.2.2"}, {"10.244.2.3"}, 53) is None
    assert "missing ['10.244.2.3']" in (endpoints_in_rules(rules, {"10.244.2.3"}, set(), 53) or "")
    assert "stale ['10.244.2.2']" in (endpoints_in_rules(rules, set(), {"10.244.2.2"}, 53) or "")


def test_coredns_error_line_quotes_its_complaint() -> None:
    log = (
        "maxprocs: Leaving GOMAXPROCS=2\n"
        "/w/Corefile:3 - Error during parsing: Unknown directive 'cahce'\n"
    )
    assert (
        coredns.error_line(log) == "/w/Corefile:3 - Error during parsing: Unknown directive 'cahce'"
    )
    assert coredns.error_line("") == "(CoreDNS logged nothing)"


def test_configured_corefile_edits_cache_and_concurrency() -> None:
    base = coredns.kubeadm_corefile("cluster.local")
    assert coredns.configured(base, cache=True, max_concurrent=None) == base
    off = coredns.configured(base, cache=False, max_concurrent=50)
    assert "cache 30" not in off
    assert "disable success" not in off
    assert "max_concurrent 50" in off
    assert "max_concurrent 1000" not in off
    assert off.count("{") == off.count("}")


def test_node_cache_rules_are_node_caches_list() -> None:
    rules = iptables_rules(["169.254.20.10", "10.96.0.10"])
    assert len(rules) == 2 * 12  # per address: 10 for DNS (tcp+udp), 2 for the health port
    assert ["raw", "PREROUTING", "-p", "udp", "-d", "169.254.20.10", "--dport", "53",
            "-j", "NOTRACK"] in rules  # fmt: skip
    assert ["filter", "OUTPUT", "-p", "tcp", "-s", "10.96.0.10", "--sport", "53",
            "-j", "ACCEPT"] in rules  # fmt: skip
    assert ["raw", "OUTPUT", "-p", "tcp", "-s", "10.96.0.10", "--sport", "8080",
            "-j", "NOTRACK"] in rules  # fmt: skip


def test_stand_in_fills_node_caches_placeholders_as_node_cache_does() -> None:
    text = nodecache.filled_corefile(nodecache.base_corefile("cluster.local", "10.96.0.10"),
                                     "10.96.0.11")  # fmt: skip
    assert "__PILLAR__" not in text
    assert text.count("forward . 10.96.0.11 {") == 3
    assert "forward . /etc/resolv.conf" in text


def test_coredns_error_is_told_in_the_users_file() -> None:
    user = ".:53 {\n    kubernetes cluster.local {\n    }\n    no_such_plugin\n}\n"
    written = coredns.with_kubeconfig(user, P / "k")
    bad = written.splitlines().index("    no_such_plugin") + 1
    assert bad == 5  # the kubeconfig line moved it down by one
    err = f"/w/coredns-x/Corefile:{bad} - Error during parsing: Unknown directive 'no_such_plugin'"
    assert coredns.in_user_file(err, written, "/u/my.Corefile", user) == (
        "/u/my.Corefile:4 - Error during parsing: Unknown directive 'no_such_plugin'"
    )
    kc = written.splitlines().index(f"       kubeconfig {P / 'k'}") + 1
    out = coredns.in_user_file(f"/w/Corefile:{kc} - x", written, "/u/c", user)
    assert out == "/u/c (a line the harness added) - x"


def test_the_loop_plugins_probe_is_recognised() -> None:
    """kubeadm's Corefile has `loop`; its start-up probe shows as a type "other" request."""
    from harness.backends.netns.k8s import coredns

    assert coredns.uses_loop(coredns.kubeadm_corefile("cluster.local"))
    assert not coredns.uses_loop(".:53 {\n    forward . 1.1.1.1\n    # loop\n}\n")
    before = (
        'coredns_dns_requests_total{family="1",proto="udp",server="dns://:53",type="A",'
        'view="",zone="."} 3\n'
    )
    after = before + (
        'coredns_dns_requests_total{family="1",proto="udp",server="dns://:53",type="other",'
        'view="",zone="."} 1\n'
    )
    assert not coredns.loop_probe_counted(before)
    assert coredns.loop_probe_counted(after)
