"""Real CoreDNS in a CoreDNS pod's namespace.

The default Corefile is the one kubeadm installs (the same text in Kubernetes 1.35 and 1.37:
``cmd/kubeadm/app/phases/addons/dns/manifests.go``). The harness plays the kubelet, which
would mount the service-account token the kubernetes plugin uses in a pod; here the plugin
gets the same identity as a kubeconfig (one ``kubeconfig`` line added to each kubernetes
block, nothing else changed). ``forward . /etc/resolv.conf`` reads the pod's resolv.conf,
which the harness writes with the node's upstream (dnsPolicy Default, as kubeadm's pod has).

Received and answered counts come from CoreDNS's own Prometheus metrics, per replica.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from cthcommon.corefile import KUBERNETES_LINE
from cthcommon.errors import BackendError
from cthcommon.netns import http_get
from harness.backends.kube.coredns import set_cache, set_max_concurrent
from harness.backends.netns.k8s.procs import Components
from harness.kernel.process import Proc
from harness.kubeapi.wait import wait_for

METRICS_PORT = 9153
READY_PORT = 8181
REQUESTS = "coredns_dns_requests_total"
RESPONSES = "coredns_dns_responses_total"


def kubeadm_corefile(domain: str) -> str:
    """The Corefile kubeadm writes into the coredns ConfigMap for cluster domain ``domain``."""
    return f""".:53 {{
    errors
    health {{
       lameduck 5s
    }}
    ready
    kubernetes {domain} in-addr.arpa ip6.arpa {{
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }}
    prometheus :{METRICS_PORT}
    forward . /etc/resolv.conf {{
       max_concurrent 1000
    }}
    cache 30 {{
       disable success {domain}
       disable denial {domain}
    }}
    loop
    reload
    loadbalance
}}
"""


def configured(base: str, *, cache: bool | None, max_concurrent: int | None) -> str:
    """``base`` with the scenario's CoreDNS settings: the cache plugin on or off (the whole
    directive, with its block; None leaves it as written), and forward's ``max_concurrent``
    when one is given. The same text edits the kube backends make to the live ConfigMap."""
    text = base if cache is None else set_cache(base, cache)
    if max_concurrent is not None:
        text = set_max_concurrent(text, max_concurrent)
    return text


_KUBERNETES = KUBERNETES_LINE  # the line the scenario's check requires (cthcommon.corefile)


def with_kubeconfig(corefile: str, kubeconfig: Path) -> str:
    """Give every ``kubernetes`` plugin the harness's credentials (what a pod's service
    account token would be). A kubernetes line without a block gets one."""
    out: list[str] = []
    found = False
    for line in corefile.splitlines():
        m = _KUBERNETES.match(line)
        if m is None or "kubeconfig" in line:
            out.append(line)
            continue
        found = True
        indent = m.group(1)
        if m.group(3):
            out += [line, f"{indent}   kubeconfig {kubeconfig}"]
        else:
            out += [line.rstrip() + " {", f"{indent}   kubeconfig {kubeconfig}", f"{indent}}}"]
    if not found:
        raise BackendError("the Corefile has no kubernetes plugin to give credentials to")
    return "\n".join(out) + "\n"


def argv(binary: Path, corefile: Path) -> list[str]:
    return [str(binary), "-conf", str(corefile)]


@dataclass(frozen=True)
class Counts:
    """One replica's own view: queries received and responses sent (all servers, zones)."""

    requests: int
    responses: int


def parse_counts(text: str) -> Counts:
    """Sum ``coredns_dns_requests_total`` and ``coredns_dns_responses_total`` (pure)."""
    totals = {REQUESTS: 0.0, RESPONSES: 0.0}
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            if sample.name in totals:
                totals[sample.name] += sample.value
    return Counts(int(totals[REQUESTS]), int(totals[RESPONSES]))


def error_line(log: str) -> str:
    """CoreDNS's own complaint from its log: the last line that says what failed."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if "error" in ln.lower() or "plugin/" in ln or "Corefile" in ln:
            return ln
    return lines[-1] if lines else "(CoreDNS logged nothing)"


_AT_LINE = re.compile(r"(?P<path>/\S*?Corefile):(?P<line>\d+)\b")


def in_user_file(error: str, written: str, user_path: str, user_text: str) -> str:
    """CoreDNS's complaint about the Corefile the harness wrote, told in the user's file: its
    ``PATH:LINE`` becomes the user's path and the matching line there (the harness adds the
    kubeconfig lines, so the numbers shift). A line the harness added keeps no number (pure).
    """
    from difflib import SequenceMatcher

    ours, theirs = written.splitlines(), user_text.splitlines()
    to_user: dict[int, int] = {}
    for a, b, n in SequenceMatcher(None, ours, theirs, autojunk=False).get_matching_blocks():
        for k in range(n):
            to_user[a + k + 1] = b + k + 1

    def sub(m: re.Match[str]) -> str:
        line = to_user.get(int(m.group("line")))
        return f"{user_path}:{line}" if line else f"{user_path} (a line the harness added)"

    return _AT_LINE.sub(sub, error)


def proc_name(pod_name: str) -> str:
    return f"coredns-{pod_name}" if not pod_name.startswith("coredns") else pod_name


def start(
    comps: Components,
    binary: Path,
    *,
    pod_name: str,
    pod_ns: str,
    corefile: str,
    kubeconfig: Path,
    upstreams: Iterable[str],
) -> Proc:
    comps.netns_file(pod_ns, "resolv.conf", "".join(f"nameserver {u}\n" for u in upstreams))
    path = comps.file(f"{proc_name(pod_name)}/Corefile", with_kubeconfig(corefile, kubeconfig))
    # lameduck keeps a stopping CoreDNS answering for 5 s: give it that, then kill
    return comps.spawn(proc_name(pod_name), argv(binary, path), pod_ns, grace_s=6.0)


def wait_ready(
    proc: Proc, pod_ns: str, pod_ip: str, timeout_s: float = 30, *, loop: bool = False
) -> None:
    """Until the ready plugin says every plugin (the kubernetes plugin's sync) is ready; with
    ``loop`` (the Corefile has the loop plugin), also until its start-up probe, a query to
    itself, has been counted, so that it never lands in a phase's received/answered counts."""

    def probe() -> str | None:
        status, body = http_get(pod_ns, pod_ip, READY_PORT, "/ready")
        return None if status == 200 else f"HTTP {status}: {body[:200]}"

    wait_for(f"{proc.name} /ready", probe, timeout_s=timeout_s, procs=[proc])
    if loop:

        def probed() -> str | None:
            _, body = http_get(pod_ns, pod_ip, METRICS_PORT, "/metrics")
            return None if loop_probe_counted(body) else "the loop plugin's probe not seen yet"

        wait_for(f"{proc.name} loop probe", probed, timeout_s=timeout_s, procs=[proc])


_LOOP_LINE = re.compile(r"^\s*loop\s*(#.*)?$", re.MULTILINE)


def uses_loop(corefile: str) -> bool:
    """The Corefile enables the loop plugin (kubeadm's does) (pure)."""
    return _LOOP_LINE.search(corefile) is not None


def loop_probe_counted(metrics: str) -> bool:
    """The loop plugin's start-up probe (an HINFO query to itself, counted as type "other")
    is in ``coredns_dns_requests_total`` (pure)."""
    for fam in text_string_to_metric_families(metrics):
        for sample in fam.samples:
            if sample.name == REQUESTS and sample.labels.get("type") == "other":
                return sample.value >= 1
    return False


def read_counts(pod_ns: str, pod_ip: str) -> Counts:
    status, body = http_get(pod_ns, pod_ip, METRICS_PORT, "/metrics")
    if status != 200:
        raise BackendError(f"CoreDNS metrics at {pod_ip}:{METRICS_PORT}: HTTP {status}")
    return parse_counts(body)
