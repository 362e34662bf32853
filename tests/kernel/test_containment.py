"""Containment: no packet of a run leaves the harness's namespaces, and no address it uses
collides with the host's own routes.

tcpdump listens in the host's own namespace on every interface (``-i any``) for the whole of
a short run. The harness's ranges must show 0 packets there. A second tcpdump with the same
filter inside the run's client node is the control: it must see the run's traffic, so the
filter is right and the 0 is not an empty capture.
"""

from __future__ import annotations

import ipaddress
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from cthcommon.errors import UnsafeRequest
from harness.backends.netns import topology
from harness.backends.netns import topologyplan as P
from tests.kernel.hostcheck import FakeSysctls, RunWatch, Snapshot, cli_argv, new_run_id

pytestmark = pytest.mark.kernel

FILTER = " or ".join(
    [f"net {r}" for r in P.RANGES if not r.endswith("/32")]
    + [f"host {P.NODELOCAL_IP}", f"host {P.POD_GW}", f"host {P.VPC_GW}"]
)

SCENARIO = {
    "name": "containment",
    "host": {"nf_conntrack_max": 16384},
    "cluster": {"nodes": 2, "client_pods": 2, "nodelocal_dns": True},
    "load": {"duration_s": 3, "http": {"rate": 100}, "dns": {"rate": 50}},
    "phases": [{"name": "baseline"}],
}


def _tcpdump(pcap: Path, netns: str | None = None) -> subprocess.Popen[bytes]:
    argv = ["tcpdump", "-i", "any", "-n", "-U", "-s", "128", "-w", str(pcap)]
    if netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _stop(p: subprocess.Popen[bytes]) -> None:
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def _lines(pcap: Path, expr: str | None = None) -> list[str]:
    argv = ["tcpdump", "-n", "-r", str(pcap), *([expr] if expr else [])]
    return subprocess.run(argv, capture_output=True, text=True).stdout.splitlines()


def _ns_routes(ns: str) -> list[str]:
    out = subprocess.run(
        ["ip", "-n", ns, "-4", "route", "show", "table", "all"], capture_output=True, text=True
    ).stdout
    return [ln for ln in out.splitlines() if ln.strip()]


def _route_clashes(ns_routes: list[str], host: list[str]) -> list[str]:
    """Routes in a harness namespace towards one of the host's own networks (default routes
    aside: each namespace's default only leads to the next harness namespace)."""
    host_nets = [
        ipaddress.ip_network(h, strict=False)
        for h in host
        if h not in ("default", "0.0.0.0/0") and not h.startswith("127.")
    ]
    out = []
    for ln in ns_routes:
        words = ln.split()
        dst = words[1] if words[0] in topology.ROUTE_TYPES else words[0]
        if dst == "default" or dst.startswith("127."):
            continue
        net = ipaddress.ip_network(dst, strict=False)
        out += [f"{ln}  (host has {h})" for h in host_nets if net.overlaps(h)]
    return out


PROBE = b"cth-containment-probe"


def _loopback_probe() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(PROBE, ("127.0.0.1", 9))  # discard port, loopback only


def test_no_packet_leaves_the_harness_namespaces(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeSysctls.create(tmp_path / "fake")
    state = tmp_path / "state"
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump(SCENARIO))
    rid = new_run_id()
    before = Snapshot.take(fake, state, {rid}, set(), rid)
    host_pcap, node_pcap = tmp_path / "host.pcap", tmp_path / "node.pcap"
    host_cap = _tcpdump(host_pcap)
    time.sleep(1.0)  # tcpdump is listening before the first namespace exists
    watch = RunWatch(rid).start()
    run = subprocess.Popen(
        fake.argv(cli_argv(rid, "run", str(f))),
        env=fake.env(state, rid),
        cwd=tmp_path,  # the run's default report dir goes there, not into the checkout
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    node_cap = None
    clashes: list[str] = []
    namespaces: set[str] = set()
    try:
        end = time.monotonic() + 60
        while watch.load_start is None and run.poll() is None and time.monotonic() < end:
            time.sleep(0.05)
        node_cap = _tcpdump(node_pcap, f"cth-{rid}-node-1")
        _loopback_probe()  # the host capture's own control: it must see this one
        host = topology.host_routes()
        for p in Path("/run/netns").glob(f"cth-{rid}-*"):
            namespaces.add(p.name)
            clashes += [f"{p.name}: {c}" for c in _route_clashes(_ns_routes(p.name), host)]
        _, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        if node_cap is not None:
            _stop(node_cap)
        time.sleep(0.5)
        _stop(host_cap)
        watch.stop()
    assert run.returncode in (0, 1, 6), err  # a verdict: pass, violated or inconclusive
    escaped = _lines(host_pcap, FILTER)
    control = _lines(node_pcap, FILTER)
    host_all = _lines(host_pcap)
    flows = {" ".join(ln.split()[2:5]) for ln in host_all if " IP " in ln}
    with capsys.disabled():
        print(
            f"\ncontainment: {len(namespaces)} namespaces; host capture {len(host_all)} "
            f"packets in {len(flows)} flows, {len(escaped)} in the harness ranges; control "
            f"(inside node-1) {len(control)} packets; {len(clashes)} route clashes"
        )
    assert any("127.0.0.1.9:" in ln for ln in host_all), host_all[:5]  # capture works
    assert len(namespaces) >= 8
    assert clashes == []
    assert len(control) > 0  # the filter matches the run's traffic where it really flows
    assert escaped == [], escaped[:10]
    assert not Snapshot.take(fake, state, {rid}, watch.inodes, rid).leftovers_since(before)


def test_overlapping_host_route_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host already routes 10.96.0.0/12 (a Service range): building must be refused."""
    monkeypatch.setattr(
        topology, "host_routes", lambda: ["default", "192.0.2.0/24", "10.96.0.0/12"]
    )
    with pytest.raises(UnsafeRequest, match=r"10\.96\.0\.0/12 overlaps 10\.96\.0\.0/16"):
        topology.check_host_routes()


def test_host_address_in_a_harness_range_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A kube-proxy IPVS node holds 10.96.0.10 on kube-ipvs0: 'ip route show table all'
    prints it as a typed 'local' route. It must count as a clash, not be skipped."""
    monkeypatch.setattr(
        topology,
        "run",
        lambda argv, **kw: subprocess.CompletedProcess(
            argv,
            0,
            "local 10.96.0.10 dev kube-ipvs0 table local proto kernel scope host\n"
            "default via 192.0.2.1 dev eth0\n",
            "",
        ),
    )
    assert "10.96.0.10" in topology.host_routes()
    with pytest.raises(UnsafeRequest, match=r"10\.96\.0\.10 overlaps"):
        topology.check_host_routes()


def test_no_overlap_on_this_host() -> None:
    """This host's own routes leave the harness's ranges free (what the run above relies on)."""
    topology.check_host_routes()
