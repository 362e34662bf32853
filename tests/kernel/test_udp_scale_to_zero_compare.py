"""The upgrade check catches kubernetes#139628 for real: `compare --run` runs
scenarios/udp-scale-to-zero.yaml with kube-proxy v1.35.4 and with kube-proxy v1.37.2 (alone,
beside the default release's control plane and CoreDNS: a fresh machine builds only the
second kube-proxy, with progress), and the verdict changes because of what was measured:

- v1.35.4's reconciler skips kube-dns while it has no endpoint, so each same-port client's
  conntrack entry stays DNATed to a deleted CoreDNS pod, and what it sends is blackholed;
- v1.37.2 deletes those entries, so every later packet meets kube-proxy's reject rule at the
  client's node: the client gets ECONNREFUSED (for one packet a second: the kernel
  rate-limits its ICMP errors, icmp_ratelimit) and nothing goes to the deleted pods.

Both recover once CoreDNS is back. Nothing may be left on the host.

A one-way statsd-like sender beside them is counted at the receivers (the CoreDNS pods' nft
counters) and, while kube-dns has no endpoint, on the nodes: on v1.35.4 its datagrams die at
the deleted pod's blackhole route, on v1.37.2 at kube-proxy's reject rule. Each side also
records every node's kube-proxy: its rule syncs and conntrack reconciles (from its metrics)
and its RSS next to the node's conntrack count.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.upstream import default_version
from tests.kernel.conftest import HostSnapshot

pytestmark = pytest.mark.kernel

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "udp-scale-to-zero.yaml"
OLD, NEW = "v1.35.4", "v1.37.2"


def _phase(out: Path, release: str) -> tuple[dict[str, Any], dict[str, Any]]:
    result = json.loads((out / release / "result.json").read_text())
    (phase,) = result["phases"]
    return result, phase


def _check_events(phase: dict[str, Any], clients: int) -> None:
    """The events happened on the load's clock, each with its effect on the timeline."""
    events = phase["endpoints"]["events"]
    kinds = [e["event"] for e in events]
    scales = [e for e in events if e["event"] == "scale"]
    assert [e["replicas"] for e in scales] == [0, 2]
    assert 4.5 <= scales[0]["t_s"] <= 6.0, scales  # at_s 5 on the load's clock
    assert 17.5 <= scales[1]["t_s"] <= 19.0, scales
    down, up = kinds[: kinds.index("scale", 1)], kinds[kinds.index("scale", 1) :]
    assert down.count("deleted") == down.count("network-removed") == 2
    assert down[-2:] == ["endpoints", "rules"]
    assert up.count("started") == up.count("ready") == 2
    assert up[-2:] == ["endpoints", "rules"]
    times = [e["t_s"] for e in events]
    assert times == sorted(times)
    # the new pods have new IPs, and the empty EndpointSlice was seen
    gone = {e["ip"] for e in events if e["event"] == "deleted"}
    new = {e["ip"] for e in events if e["event"] == "ready"}
    assert gone
    assert new
    assert not gone & new
    (window,) = phase["endpoints"]["zero_windows"]
    assert window["rules_s"] is not None
    assert window["sent"] >= clients * 20 * 8  # 20 queries/s per pod, most of the 13 s judged
    # the same-port client never reopened: one source port per pod all phase
    udp = phase["udp"]
    assert udp["pods"] == clients == len(set(udp["source_ports"].values()))
    assert udp["reopened"] == 0
    # it recovered after the scale-up: its last seconds were answered
    last = [r for r in udp["timeline"] if r[0] >= 24]
    assert last
    assert all(r[2] == r[1] for r in last), last


def _check_statsd(phase: dict[str, Any], clients: int) -> dict[str, Any]:
    """The sender's datagrams are all accounted for, and none arrived with no endpoint."""
    st = phase["statsd"]
    assert st["pods"] == clients == len(set(st["source_ports"].values()))
    assert st["send_errors"] == 0
    assert st["sent"] == st["sent_seen_by_nodes"] > 0  # every one seen leaving its pod
    assert 0 < st["delivered"] < st["sent"]
    assert sum(st["by_receiver"].values()) == st["delivered"]
    assert st["lost"] == st["sent"] - st["delivered"]
    (w,) = st["zero_windows"]
    assert w["sent"] >= clients * 20 * 8  # 20 datagrams/s per pod, most of the judged part
    assert w["delivered"] == 0  # no endpoint, nothing may arrive
    assert abs(w["unaccounted"]) <= 0.05 * w["sent"], w
    return dict(st)


def _check_kube_proxy(phase: dict[str, Any], nodes: int) -> None:
    """Every node's kube-proxy synced and reconciled during the phase, and was sampled."""
    kp = phase["kube_proxy"]
    assert len(kp["nodes"]) == nodes
    for name, n in kp["nodes"].items():
        assert n["sync"]["count"] > 0, name  # the scale-down and the scale-up at least
        assert n["reconcile"]["count"] > 0, name  # it runs at the end of every sync
        assert n["reconcile"]["sum_s"] > 0, name
        assert n["rss_kib_max"] >= n["rss_kib_first"] > 0, name
        assert n["conntrack_count_max"] > 0, name
        assert n["samples"] >= 20, name  # once a second over a 28 s load
    assert kp["reconcile_count"] == sum(n["reconcile"]["count"] for n in kp["nodes"].values())
    assert not [k for k in phase["unavailable"] if k.startswith("kube_proxy.")]


def test_the_upgrade_check_catches_the_blackholed_same_port_client(
    tmp_path: Path, host_unchanged: HostSnapshot
) -> None:
    out = tmp_path / "reports"
    argv = [
        *("compare", "--run", str(SCENARIO), "--kubernetes", OLD, NEW),
        *("--parts", "kube-proxy", "--report-dir", str(out), "--wait", "1800", "--json"),
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", *argv],
        capture_output=True,
        text=True,
        timeout=3600,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr[-4000:]  # "the upgrade changed a verdict"
    diff = json.loads(proc.stdout)
    (p,) = diff["phases"]
    assert (p["name"], p["a"]["verdict"], p["b"]["verdict"]) == ("scale-to-zero", "fail", "pass")
    # the comparison itself names where each side's queries went
    assert p["a"]["endpoints"]["blackholed"] > 0 == p["b"]["endpoints"]["blackholed"]
    assert p["a"]["endpoints"]["client_flows_stale_max"] > 0
    assert p["b"]["endpoints"]["stale_entries_max"] == 0
    assert p["a"]["statsd"]["blackholed"] > 0 == p["b"]["statsd"]["blackholed"]

    old_result, old = _phase(out, OLD)
    new_result, new = _phase(out, NEW)
    clients = 2
    for phase in (old, new):
        _check_events(phase, clients)
        _check_kube_proxy(phase, nodes=2)
    so, sn = _check_statsd(old, clients), _check_statsd(new, clients)
    # v1.35.4: the sender's datagrams went to a deleted pod; v1.37.2: kube-proxy rejected them
    (wo,), (wn,) = so["zero_windows"], sn["zero_windows"]
    assert wo["blackholed"] >= 0.9 * wo["sent"], wo
    assert wo["rejected"] == 0, wo
    assert wn["rejected"] >= 0.9 * wn["sent"], wn
    assert wn["blackholed"] == 0, wn
    # v1.37.2's reconciler deleted the clients' entries while kube-dns had no endpoint
    assert new["kube_proxy"]["reconcile_deleted_entries"] >= clients

    # kube-proxy differs; the control plane is the default release's on both sides
    for result, v in ((old_result, OLD), (new_result, NEW)):
        comps = result["environment"]["components"]
        assert comps["kube-proxy"]["version"] == v
        assert comps["kube-apiserver"]["version"] == default_version()
    assert "OUTSIDE" in new_result["environment"]["components"]["kube-proxy"]["skew"]

    # v1.35.4: every same-port client's entry stayed DNATed to a deleted pod, and what it
    # sent went nowhere
    eo = old["endpoints"]
    assert eo["stale_entries_max"] >= clients, eo["zero_windows"]
    assert eo["client_flows_stale_max"] == clients, eo["zero_windows"]
    assert eo["blackholed_rate"] >= 0.9, eo["zero_windows"]
    assert eo["answered"] == eo["refused"] == 0
    # v1.37.2: no entry left pointing at a deleted pod; every query met the reject rule at
    # the clients' node: refused, or dropped there without an ICMP error (rate-limited)
    en = new["endpoints"]
    assert en["stale_entries_max"] == en["client_flows_stale_max"] == 0, en["zero_windows"]
    assert en["refused"] > 0
    assert en["refused"] + en["rejected_silently"] >= 0.95 * en["sent"], en["zero_windows"]
    assert en["blackholed"] == 0
    # the verdict changed on exactly these measured expectations
    failed = {e["expect"] for e in old["expectations"] if not e["ok"]}
    assert failed >= {
        "endpoints.stale_entries_max == 0",
        "endpoints.blackholed_rate <= 0.05",
        "statsd.blackholed_rate <= 0.05",
    }
    assert all(e["ok"] for e in new["expectations"])
