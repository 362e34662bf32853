"""KubeRunCluster against fakes: a phase's measurement, its result.json shape (the same as
netns's), and the CLI's cluster flags and refusals. No cluster, no root."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from kube_fakes import FakeAPI, FakeRunner, cluster_objects, node, scenario

from cthcommon.errors import BackendError, BadInput, NotRoot, UnsafeRequest
from harness import cli, runner
from harness.backendcheck import check_backend
from harness.backends.base import BackendOptions
from harness.backends.kube.kind import KindBackend, KindSettings
from harness.backends.kube.names import LABEL_NODE
from harness.backends.kube.nodeaccess import parse_timeouts
from harness.backends.kube.runcluster import KubeRunCluster, series_labels
from harness.backends.netns import cluster as netns_cluster
from harness.backends.stages import Stages
from harness.judge.gate import not_steady
from harness.kernel.sampler import NodeSeries, Reading
from harness.measurement import PhaseMeasurement
from harness.plan.phase import plan_cluster, plan_phase, plan_run
from harness.results.build import build_phase_result
from harness.results.evidence import Evidence
from harness.results.schema import PhaseResult, ServerResult, SteadyStateResult
from harness.scenario.model import Scenario
from tests.nft_listings import fault_listing

TIMEOUTS = "120\n10\n30\n120\n"  # TIME_WAIT, CLOSE, UDP, UDP stream in the client node
INODES = {"cth-r1-worker": 4026532001, "cth-r1-worker2": 4026532002}
RESOLV = (
    "search cth-r1.svc.cluster.local svc.cluster.local cluster.local\n"
    "nameserver 10.96.0.10\noptions ndots:5\n"
)
LISTING = (
    "tcp      6 110 TIME_WAIT src=10.244.1.2 dst=10.96.7.3 sport=4000 dport=80 [ASSURED]\n"
    "udp      17 29 src=10.244.1.2 dst=10.96.0.10 sport=5000 dport=53 [UNREPLIED]\n"
)


def worker_answer(plan: dict[str, Any]) -> dict[str, Any]:
    """What one pod's worker would answer: counts that follow from the plan it got."""
    out: dict[str, Any] = {}
    if "dns" in plan:
        p = plan["dns"]["plan"]
        lookups = int(p["rate"] * p["duration_s"])
        timeouts = lookups // 10
        out["dns"] = {
            "lookups": lookups,
            "timeouts": timeouts,
            "timeout_rate": timeouts / lookups,
            "failed": 0,
            "failed_rate": 0.0,
            "full_timeout_waits": timeouts,
            "full_timeout_rate": timeouts / lookups,
            "queries_sent": 2 * lookups + timeouts,
            "queries_unanswered": timeouts,
            "queries_per_lookup": (2 * lookups + timeouts) / lookups,
            "latency_ms": {"p50": 1.0, "p90": 2.0, "p99": 5000.0, "max": 5003.0},
            "resolver": p["resolver"],
            "timeline": [[0, lookups // 2, 0], [1, lookups - lookups // 2, timeouts]],
            "elapsed_s": p["duration_s"],
            "latency_hist": {"edges_s": [0.01, 1.0], "counts": [lookups - timeouts, timeouts]},
            "by_name": {"http-server": {"lookups": lookups, "queries": 2 * lookups}},
        }
    if "http" in plan:
        p = plan["http"]["plan"]
        requests = int(p["rate"] * p["duration_s"])
        out["http"] = {
            "mode": p["mode"],
            "requests": requests,
            "failures": 1,
            "failure_rate": 1 / requests,
            "new_connections": requests,
            "connect_failures": 1,
            "elapsed_s": p["duration_s"],
            "latency_ms": {"p50": 0.5, "p90": 1.0, "p99": 2.0, "max": 3.0},
            "errors": {"ConnectTimeout": 1},
            "timeline": [[0, requests, 1]],
        }
    return out


class NodeStats:
    """Each node's /proc/net/stat/nf_conntrack: drop and count grow on every read."""

    def __init__(self) -> None:
        self.reads: dict[str, int] = {}

    def __call__(self, argv: Sequence[str], _stdin: str | None) -> str:
        container = argv[2]
        n = self.reads[container] = self.reads.get(container, 0) + 1
        drop = 3 * n if container == "cth-r1-worker" else 0
        count = 1000 + 500 * n
        row = f"{count:08x} 00000001 {10 * n:08x} {n:08x} {drop:08x} 00000000"
        return f"entries clashres insert insert_failed drop early_drop\n{row}\n{count}\n2048\n"


class FakeLog:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.closed = False

    def read_new(self) -> list[str]:
        return list(self.lines)

    def close(self) -> None:
        self.closed = True


def kind_cluster(s: Scenario, log: FakeLog | None) -> tuple[KubeRunCluster, FakeRunner, NodeStats]:
    api = FakeAPI(
        cluster_objects(
            [
                node("cth-r1-control-plane", taint=True),
                node("cth-r1-worker", {LABEL_NODE: "node-1"}),
                node("cth-r1-worker2", {LABEL_NODE: "node-2"}),
            ]
        )
    )
    stats = NodeStats()
    nft = (fault_listing(h, 2 * h, h // 7) for h in range(0, 1000, 7))
    run = FakeRunner(
        {
            ("...", "cat", "/etc/resolv.conf"): RESOLV,
            ("...", "/proc/sys/net/netfilter/nf_conntrack_max"): stats,
            ("...", "readlink", "/proc/self/ns/net"): lambda a, _i: f"net:[{INODES[a[2]]}]\n",
            ("...", "conntrack", "-L"): LISTING,
            ("...", "nft", "list", "table"): lambda _a, _i: next(nft),
            ("...", "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_time_wait"): TIMEOUTS,
            ("kubectl",): lambda _a, stdin: json.dumps(
                {
                    **worker_answer(json.loads((stdin or "{}").splitlines()[0])),
                    "started_monotonic": time.monotonic(),
                }
            ),
        }
    )
    backend = KindBackend(
        KindSettings(build_images=False, private_docker=False),
        runner=run,
        api_factory=lambda _kc: api,
        euid=lambda: 0,
    )
    return (
        KubeRunCluster(backend, plan_run(s), "r1", kernel_log=lambda: log, sample_hz=50),
        run,
        stats,
    )


def steady(m: PhaseMeasurement) -> SteadyStateResult:
    ss = m.observed.steady_state
    assert ss is not None, "no steady state was assessed"
    return ss


def quick(**kw: Any) -> Scenario:
    return scenario(
        load={"duration_s": 2, "dns": {"rate": 40}, "http": {"rate": 80}},
        phases=[
            {"name": "baseline", "expect": ["dns.timeout_rate < 0.5"]},
            {"name": "race", "faults": [{"kind": "race-window", "probability": 0.5}]},
        ],
        **kw,
    )


def measure(s: Scenario, log: FakeLog | None) -> tuple[list[PhaseMeasurement], NodeStats]:
    cluster, _, stats = kind_cluster(s, log)
    out = []
    with cluster:
        cluster.apply_node_sysctls()
        for phase in s.phases:
            want = plan_phase(s, phase)
            with cluster.phase(want) as plan:
                assert plan == want  # the backend realizes the one phase plan it is given
                assert cluster.kube.node_map.nodes == {
                    "node-1": "cth-r1-worker",
                    "node-2": "cth-r1-worker2",
                }
                out.append(cluster.measure(plan, None))
    return out, stats


def test_measure_merges_the_pods_and_samples_the_nodes() -> None:
    s = quick()
    log = FakeLog(
        [
            "[  1.0] nf_conntrack: table full in netns 4026532001, dropping packet",
            "[  1.1] nf_conntrack: table full in netns 4026532001, dropping packet",
            "[  1.2] nf_conntrack: table full in netns 99, dropping packet",
        ]
    )
    (base, race), stats = measure(s, log)
    # four pods, each a quarter of the rate: the merged counts are the whole phase's
    per_pod = worker_answer(
        {"dns": {"plan": {"rate": 10.0, "duration_s": 2, "resolver": "glibc"}}}
    )["dns"]
    assert base.load["dns"]["lookups"] == 4 * per_pod["lookups"]
    assert base.load["dns"]["timeouts"] == 4 * per_pod["timeouts"]
    assert base.load["dns"]["timeout_rate"] == pytest.approx(
        base.load["dns"]["timeouts"] / base.load["dns"]["lookups"]
    )
    assert base.load["dns"]["latency_ms"]["max"] == per_pod["latency_ms"]["max"]
    assert base.load["dns"]["latency_hist"]["counts"] == [
        4 * c for c in per_pod["latency_hist"]["counts"]
    ]
    assert base.load["http"]["requests"] == 4 * int(20.0 * 2)
    assert base.load["dns"]["timeline"][1][2] == 4 * per_pod["timeout_rate"] * per_pod["lookups"]
    # per node: series named as the scenario's nodes, deltas from the stat reads
    assert sorted(base.series) == ["node-1", "node-2"]
    w1 = base.series["node-1"]
    assert w1.delta["drop"] == w1.stat_end["drop"] - w1.stat_start["drop"] > 0
    assert base.series["node-2"].delta["drop"] == 0
    assert w1.peak == max(c for _, c in w1.timeline) > 1000
    assert w1.states_at_peak == {"TIME_WAIT": 1, "UDP_UNREPLIED": 1}
    # 'table full' lines go to the node whose namespace they name; the foreign one to none
    assert len(w1.table_full) == 2
    assert base.series["node-2"].table_full == []
    assert base.conntrack_max == 2048
    assert list(base.resolv.nameservers) == ["10.96.0.10"]
    assert base.kernel == "6.18.0"
    assert base.server_counters == {"rx": 0, "tx": 0}
    assert "server_counters" in base.observed.unavailable
    assert base.observed.fault is None
    # the injected fault is labelled and its hits come from the nft counter's growth
    fault = race.observed.fault
    assert fault is not None
    assert fault["injected"] is True
    assert fault["hits"] > 0
    assert fault["hits"] % 7 == 0
    # the window's counters too, read as netns reads them (the same named counters)
    assert fault["window_open"] == 2 * fault["hits"]
    assert fault["answered_first"] == fault["hits"] // 7
    assert sum(stats.reads.values()) > 0


def test_a_natural_phase_on_kind_is_assessed_and_not_called_steady() -> None:
    """The same model and assessment as netns, from a natural start (here: no guard to set
    the nodes' timeouts with, so no warm-up): 80 short-lived connections/s for 2 s with
    TIME_WAIT 120 s cannot turn a 2,048 table over."""
    (base, _), _ = measure(quick(), None)
    ss = steady(base)
    assert ss["warmup"]["method"] == "none"
    assert "no aged warm-up" in str(ss["warmup"]["label"])
    assert ss["max"] == 2048
    # 80/s x 120 s of TIME_WAIT is more than the table: its steady state is a full table
    assert ss["expected_occupancy"] > 2048
    assert ss["reached"] is False
    assert ss["verdict"] == "inconclusive"
    assert ss["reason"]
    assert base.observed.load_start_s is not None
    assert 0 <= base.observed.load_start_s < 5
    # and a comparison against it cannot read "fixed"
    assert not_steady([{"name": "baseline", "steady_state": ss}]) is not None


# --- the aged warm-up on kind (harness.steady.warmup, the netns backend's) -------------------------
TW = "net.netfilter.nf_conntrack_tcp_timeout_time_wait"
UDP = "net.netfilter.nf_conntrack_udp_timeout"
# PIDs above any pid_max: no process has them, so nothing real is opened
NODE_NS = {"cth-r1-worker": "/proc/4999101/ns/net", "cth-r1-worker2": "/proc/4999102/ns/net"}


class RecordingGuard:
    """The runner's guard as the warm-up sees it: a per-namespace set, recorded."""

    def __init__(self, values: dict[tuple[str, str], str]) -> None:
        self.values = values
        self.calls: list[tuple[str | None, str, str]] = []

    def set(self, key: str, value: int | str, netns: str | None = None) -> None:
        assert netns is not None
        self.values[(netns, key)] = str(value)
        self.calls.append((netns, key, str(value)))


def aged_kind(
    monkeypatch: pytest.MonkeyPatch, *, find_pods: bool = True, s: Scenario | None = None
) -> tuple[list[PhaseMeasurement], RecordingGuard, list[tuple[str, tuple[str, ...], Any]]]:
    """measure() on kind with a guard, the node containers' and pods' namespaces found by
    handle, and the flows the warm-up would open recorded instead (no kernel)."""
    from harness.backends.kube import nodeaccess
    from harness.steady import warmup

    values = {(ns, k): v for ns in NODE_NS.values() for k, v in ((TW, "120"), (UDP, "30"))}
    guard = RecordingGuard(values)
    fills: list[tuple[str, tuple[str, ...], Any]] = []

    def fill(kind: str) -> Any:
        async def opened(t: warmup.WarmupTargets, n: int) -> tuple[int, int]:
            fills.append((kind, t.client_ns, t))
            return n, 0

        return opened

    def pod_netns(_self: Any, node: str, ips: Any) -> dict[str, str]:
        if not find_pods or node != "cth-r1-worker":
            return {}
        return {ip: f"/proc/49992{ip.rsplit('.', 1)[1]}/ns/net" for ip in ips}

    monkeypatch.setattr(warmup, "_http_fill", fill("http"))
    monkeypatch.setattr(warmup, "_dns_fill", fill("dns"))
    monkeypatch.setattr(warmup, "read", lambda key, ns: values[(ns, key)])
    monkeypatch.setattr(
        warmup, "run", lambda *_a, **_k: subprocess.CompletedProcess([], 0, LISTING, "")
    )
    monkeypatch.setattr(nodeaccess.DockerNodeAccess, "netns", lambda _s, n: NODE_NS[n])
    monkeypatch.setattr(nodeaccess.DockerNodeAccess, "pod_netns", pod_netns)
    s = s or quick()
    cluster, _, _ = kind_cluster(s, None)
    cluster._guard = guard
    out = []
    with cluster:
        for phase in s.phases:
            with cluster.phase(plan_phase(s, phase)) as plan:
                out.append(cluster.measure(plan, None))
    return out, guard, fills


def test_kind_warms_its_nodes_up_through_the_pods_and_node_namespaces(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = scenario(
        load={"duration_s": 2, "dns": {"rate": 40}, "http": {"rate": 80}},
        phases=[{"name": "baseline"}],
    )
    (base,), guard, fills = aged_kind(monkeypatch, s=s)
    ss = steady(base)
    w = ss["warmup"]
    assert w["method"] == "aged-fill"
    assert "aged fill" in str(w["label"])
    # flows from every client pod's namespace (found by its IP), to the run's Services
    assert {kind for kind, _, _ in fills} == {"http", "dns"}
    for _, client_ns, _ in fills:
        assert len(set(client_ns)) == 4
        assert all(p.startswith("/proc/49992") for p in client_ns)
    target = fills[0][2]
    assert target.dns_name == "http-server.cth-r1.svc.cluster.local."
    assert target.http_ip != target.dns_ip
    # each chunk's timeout set in every node's namespace, longest first, then put back
    assert {ns for ns, _, _ in guard.calls} == set(NODE_NS.values())
    tw_sets = [int(v) for ns, k, v in guard.calls if k == TW and ns == NODE_NS["cth-r1-worker"]]
    assert tw_sets[:-1] == sorted(tw_sets[:-1], reverse=True)
    assert tw_sets[-1] == 120
    assert all(guard.values[(ns, TW)] == "120" for ns in NODE_NS.values())
    # what the warm-up opened and when the load started are reported, as on netns
    flows = {f["kind"]: f for f in w["flows"]}
    assert flows["http-short-lived"]["opened"] == flows["http-short-lived"]["wanted"] > 0
    assert isinstance(w["gap_to_load_s"], float)
    assert w["remaining_lifetimes_at_load_s"]["tcp-TIME_WAIT"]["n"] == 1
    assert "ended_monotonic" not in w
    # these node namespaces cannot be opened here: sampled by command instead, and said so
    assert base.observed.sample_hz == 50
    assert any("sampled by command" in n for n in base.observed.notes)


def test_kind_without_a_pods_namespace_says_so_and_starts_naturally(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    (base, _), guard, fills = aged_kind(monkeypatch, find_pods=False)
    w = steady(base)["warmup"]
    assert w["method"] == "none"
    assert "were not found on this host" in str(w["label"])
    assert guard.calls == []
    assert fills == []


def test_kind_does_not_warm_up_a_load_that_says_none(monkeypatch: pytest.MonkeyPatch) -> None:
    s = scenario(
        load={"duration_s": 2, "dns": {"rate": 40}, "http": {"rate": 80}, "warmup": "none"},
        phases=[{"name": "baseline"}],
    )
    (base,), guard, fills = aged_kind(monkeypatch, s=s)
    assert steady(base)["warmup"] == {
        "method": "none",
        "label": "natural: no warm-up",
    }
    assert guard.calls == []
    assert fills == []


def test_node_timeouts_are_parsed_or_refused() -> None:
    t = parse_timeouts(TIMEOUTS)
    assert (t.tcp_time_wait, t.tcp_close, t.udp, t.udp_stream) == (120, 10, 30, 120)
    with pytest.raises(BackendError, match="timeout"):
        parse_timeouts("120\n10\n")


def test_measure_without_kernel_log_says_so() -> None:
    s = quick()
    (base, _), _ = measure(s, None)
    assert all(t.table_full == [] for t in base.series.values())
    assert any("kernel log" in n for n in base.observed.notes)
    # and so does the phase's result: a backend's notes reach result.json
    notes = build_phase_result(s.phases[0], 0, base)["notes"]
    assert notes == base.observed.notes
    assert any("kernel log" in n for n in notes)


def test_series_labels_are_the_scenario_node_names() -> None:
    from harness.backends.kube.placement import NodeMap

    own = NodeMap({"node-1": "a", "node-2": "b"}, {"node-1": "a", "node-2": "b"})
    assert series_labels(own) == {"node-1": "a", "node-2": "b"}


# --- the same result.json shape as netns ----------------------------------------------------
class FakeProbe:
    """A netns node probe (harness.kernel.sampler.Probe) whose count rises every read."""

    def __init__(self, node: str) -> None:
        self.node, self.ns, self.inode = node, f"cth-t-{node}", 1
        self.where = self.ns
        self.dns_sources = ("10.244.",)
        self.n = 0

    def read(self, with_stats: bool) -> Reading:
        count = self.count()
        return Reading(count, self.stat() if with_stats else None)

    def netns_inode(self) -> int | None:
        return self.inode

    def count(self) -> int:
        self.n += 1
        return 100 * self.n

    def stat(self) -> dict[str, int]:
        return {"drop": self.n, "insert_failed": 0, "clash_resolve": 0, "early_drop": 0}

    def listing(self) -> str:
        return LISTING


class FakeProc:
    def __init__(self, out: Path, plan: Path) -> None:
        wp = json.loads(plan.read_text())
        answer = worker_answer(
            {k: {"plan": v["plan"]} for k, v in wp.items() if k in ("dns", "http")}
        )
        out.write_text(json.dumps({**answer, "started_monotonic": time.monotonic()}))
        self.popen = type("P", (), {"poll": lambda _s: 0, "returncode": 0})()
        self.pid, self.start = 1, 1

    def tail(self) -> str:
        return ""


class FakeK8s:
    """The real components' counters: each CoreDNS replica's own metrics."""

    def coredns_counts(self) -> dict[str, Any]:
        from harness.backends.netns.k8s.coredns import Counts

        return {"coredns-0": Counts(9, 8)}

    def kube_proxy_pid(self, node_name: str) -> int | None:
        return None  # no kube-proxy: the netns phase watches none


class FakeTopology:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.k8s = FakeK8s()
        self.nodelocal_enabled = False
        self.nodelocal_interface = ""
        self.hits = 0

    def flush_conntrack(self) -> None: ...

    def check_procs(self) -> None: ...

    def write_resolv_conf(self, ns: str, resolv: Any) -> None: ...

    def race_fault_counters(self) -> dict[str, int]:
        self.hits += 5
        return {"hits": self.hits, "open": 2 * self.hits, "answered": self.hits}


def netns_measurements(
    s: Scenario, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> list[PhaseMeasurement]:
    """NetnsCluster.measure itself, with the kernel and processes replaced by fakes."""
    c = netns_cluster.NetnsCluster.__new__(netns_cluster.NetnsCluster)
    c.plan = netns_cluster.plan_topology(plan_cluster(s.cluster), "t", max_coredns=0)
    c.topology = FakeTopology(tmp_path)  # type: ignore[assignment]
    c.levers = FakeTopology(tmp_path)  # type: ignore[assignment]
    c.probes = [FakeProbe(n.name) for n in c.plan.nodes]  # type: ignore[misc]
    c.journal = None  # type: ignore[assignment]
    c.captures = None
    c.phase_evidence = Evidence()
    c._warmup_gap_s = 0.5
    c.guard = None  # type: ignore[assignment]
    c.stages = Stages()  # no progress lines
    # the warm-up opens real flows (root, kernel): its model and assessment still run
    monkeypatch.setattr(netns_cluster.AgedWarmup, "run", lambda *_a, **_k: None)

    def spawn(_j: Any, _name: str, argv: list[str], **_kw: Any) -> FakeProc:
        return FakeProc(Path(argv[argv.index("--out") + 1]), Path(argv[argv.index("--plan") + 1]))

    monkeypatch.setattr(netns_cluster, "spawn", spawn)
    monkeypatch.setattr(netns_cluster, "stop_pid", lambda *_a: None)
    monkeypatch.setattr(netns_cluster.sysctl, "read", lambda *_a: "2048")
    monkeypatch.setattr(
        netns_cluster, "run", lambda *_a, **_k: subprocess.CompletedProcess([], 0, "", "")
    )
    monkeypatch.setattr(
        netns_cluster, "read_counters", lambda _ns, t: {"dns_in": 9, "dns_out": 8} if t else {}
    )
    out = []
    for phase in s.phases:
        out.append(c.measure(plan_phase(s, phase), None))
    return out


def shape(v: Any) -> Any:
    """The keys of a result, recursively (lists by their first element); values dropped."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list) and v and isinstance(v[0], dict):
        return [shape(v[0])]
    return None


def test_result_shape_matches_netns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = quick()
    kube_ms, _ = measure(s, FakeLog([]))
    netns_ms = netns_measurements(s, tmp_path, monkeypatch)
    assert all(isinstance(x.series[n], NodeSeries) for x in netns_ms for n in x.series)
    for i, phase in enumerate(s.phases):
        k: PhaseResult = build_phase_result(phase, 0, kube_ms[i])
        n: PhaseResult = build_phase_result(phase, 0, netns_ms[i])
        kshape, nshape = shape(k), shape(n)
        # the free-form node counter totals differ by design (no dns_in/out on clusters)
        kshape.pop("node")
        nshape.pop("node")
        # both say what they could not measure; which fields differs by backend (field -> why)
        assert {"server_counters", "node_dns_counters"} <= set(k["unavailable"])
        assert n["unavailable"] == {}
        kshape.pop("unavailable")
        nshape.pop("unavailable")
        assert "steady_state" in kshape
        assert "steady_state" in nshape
        # optional by contract (ServerResult's NotRequired keys): netns counts per replica
        # and upstream in the pods' own namespaces; clusters may not
        for sh in (kshape, nshape):
            for key in ServerResult.__optional_keys__:
                sh["server"].pop(key, None)
        assert kshape == nshape, phase.name
        assert k["dns"]["lookups"] == n["dns"]["lookups"]  # same plan, same load offered
    assert build_phase_result(s.phases[1], 0, kube_ms[1])["fault"]["injected"] is True


# --- CLI flags and refusals ----------------------------------------------------------------
def write_scenario(tmp_path: Path, **extra: Any) -> Path:
    doc = {
        "apiVersion": "conntrack-harness/v1",
        "kind": "Scenario",
        "name": "flags",
        "phases": [{"name": "baseline"}],
        **extra,
    }
    p = tmp_path / "s.yaml"
    p.write_text(json.dumps(doc))
    return p


def test_cli_flags_reach_backend_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[str, BackendOptions | None]] = []

    def fake_run(record: Any, _scenario: Any, *, options: BackendOptions | None, **_kw: Any) -> Any:
        seen.append((record.backend, options))
        raise BackendError("stopped here")

    monkeypatch.setattr(runner, "run", fake_run)
    monkeypatch.setattr(runner, "require_root", lambda *_a: None)  # any user
    monkeypatch.chdir(tmp_path)  # the default report dir goes under the cwd
    kc = tmp_path / "kc.yaml"
    kc.write_text("apiVersion: v1\nkind: Config\n")
    sc = write_scenario(tmp_path)
    argv = ["run", str(sc), "--backend", "kubeconfig", "--kubeconfig", str(kc)]
    assert cli.main([*argv, "--loadgen-image", "reg.example/lg", "--allow-disruptive"]) == 3
    assert cli.main(["run", str(sc), "--backend", "kind", "--keep-cluster"]) == 3
    assert seen == [
        (
            "kubeconfig",
            BackendOptions(
                kubeconfig=str(kc), loadgen_image="reg.example/lg", allow_disruptive=True
            ),
        ),
        ("kind", BackendOptions(keep_cluster=True)),
    ]
    assert not (tmp_path / "conntrack-harness-reports").exists()  # nothing measured, nothing left


def test_kubeconfig_refuses_node_sysctls_without_allow_disruptive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    touched: list[str] = []
    monkeypatch.setattr(runner, "HostLock", lambda *_a: touched.append("lock"))
    monkeypatch.setattr(runner, "environment", lambda *_a: touched.append("env"))
    sc = write_scenario(tmp_path, node_sysctls={"tcp_timeout_time_wait": 30})
    rc = cli.main(["run", str(sc), "--backend", "kubeconfig", "--loadgen-image", "reg.example/lg"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "--allow-disruptive" in err
    assert "sysctls" in err
    assert touched == []  # refused before the lock, the journal or the cluster
    # the same scenario is accepted with the flag (the refusal, not the scenario, was the issue)
    check_backend(
        "kubeconfig",
        cli_scenario(sc),
        BackendOptions(loadgen_image="reg.example/lg", allow_disruptive=True),
    )
    with pytest.raises(UnsafeRequest):
        check_backend("kubeconfig", cli_scenario(sc), BackendOptions(loadgen_image="r/lg"))


def cli_scenario(path: Path) -> Scenario:
    from harness.scenario.loader import load_scenario

    return load_scenario(str(path))


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["--backend", "netns", "--keep-cluster"], "--keep-cluster"),
        (["--backend", "kind", "--kubeconfig", "KC"], "--kubeconfig"),
        (["--backend", "kind", "--allow-disruptive"], "--allow-disruptive"),
        (["--backend", "kubeconfig"], "--loadgen-image"),
        (["--backend", "kind", "--loadgen-image", "reg/lg:v1"], "--loadgen-image"),
        (
            ["--backend", "kubeconfig", "--kubeconfig", "KC", "--loadgen-image", "r/lg", "--pcap"],
            "--pcap",
        ),
    ],
)
def test_misplaced_flags_exit_2_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], flag: str
) -> None:
    kc = tmp_path / "kc"
    kc.write_text("")
    sc = write_scenario(tmp_path)
    rc = cli.main(["run", str(sc), *[str(kc) if a == "KC" else a for a in argv]])
    assert rc == 2
    assert flag in capsys.readouterr().err


def test_root_only_where_the_host_kernel_is_touched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner.os, "geteuid", lambda: 1000)
    monkeypatch.setenv("CONNTRACK_HARNESS_STATE_DIR", str(tmp_path / "state"))
    runner.require_root("kubeconfig")  # no raise: an existing cluster changes nothing here
    for backend in ("netns", "kind"):
        with pytest.raises(NotRoot) as e:
            runner.require_root(backend)
        assert f"--backend {backend} must run as root" in str(e.value)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("CONNTRACK_HARNESS_STATE_DIR", str(blocker / "state"))
    with pytest.raises(Exception, match="CONNTRACK_HARNESS_STATE_DIR"):
        runner.require_root("kubeconfig")


def test_kube_evidence_is_the_one_typed_layout(tmp_path: Path) -> None:
    """Per node its files, per phase and pod the resolv.conf it ran with: written and read
    back as the same layout the netns backend uses (the CLI once read nodes/ as files)."""
    s = quick()
    cluster, _, _ = kind_cluster(s, None)
    with cluster:
        for phase in s.phases:
            with cluster.phase(plan_phase(s, phase)) as plan:
                cluster.measure(plan, None)
        ev = cluster.evidence()
    assert set(ev.nodes) == {"cth-r1-worker", "cth-r1-worker2"}
    assert {"iptables-save.txt", "conntrack-S.txt"} <= set(ev.nodes["cth-r1-worker"])
    assert set(ev.phase_pods) == {"baseline", "race"}
    assert all(rc == RESOLV for pods in ev.phase_pods.values() for rc in pods.values())
    ev.write(tmp_path / "evidence")
    assert Evidence.read(tmp_path / "evidence") == ev


def test_pin_cpus_on_kind_pins_the_nodes_coredns_and_the_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """As on netns: every CoreDNS process in the nodes on CPU 0 for the phase, the pods'
    workers on CPU 1 (taskset), and the servers back on every CPU after it."""
    from harness.backends.kube import nodeaccess, runcluster

    pinned: list[tuple[list[int], set[int]]] = []
    monkeypatch.setattr(runcluster, "pin_threads", lambda p, c: pinned.append((list(p), c)))
    monkeypatch.setattr(nodeaccess, "descendants_named", lambda root, comm: [root, root + 1])
    # the fake nodes' inits (100, 200) are not this host's processes: say they live
    monkeypatch.setattr(nodeaccess, "process_start_time", lambda pid: 1)
    monkeypatch.setattr(nodeaccess, "is_same_process", lambda pid, start: True)
    monkeypatch.setattr(runcluster.os, "cpu_count", lambda: 2)
    cluster, run, _ = kind_cluster(quick(), None)
    run.answers[("docker", "inspect")] = lambda argv, _i: (
        "100\n" if argv[-1].endswith("r") else "200\n"
    )
    with cluster:
        out = []
        for phase_plan in cluster.plan.phases:
            with cluster.phase(phase_plan) as plan:
                out.append(cluster.measure(plan, None))
    base, race = out
    assert pinned == [([100, 101, 200, 201], {0}), ([100, 101, 200, 201], {0, 1})]
    fault = race.observed.fault
    assert fault is not None
    assert fault["pinned_cpus"] is True
    assert not any("pin_cpus" in n for n in race.observed.notes)
    workers = [c for c in run.calls if c[0] == "kubectl" and "/bin/sh" in c]
    assert any("taskset -c 1 python3 -m loadgen.worker" in c[-1] for c in workers)
    assert base.observed.fault is None  # the baseline ran unpinned: no fault, no pin


def test_pod_worker_argv_pins_only_to_a_cpu_list() -> None:
    from harness.backends.kube.podplans import pod_worker_argv

    assert "taskset" not in pod_worker_argv()[-1]
    assert "taskset -c 0-1,3 python3" in pod_worker_argv("0-1,3")[-1]
    with pytest.raises(BadInput):
        pod_worker_argv("1; rm -rf /")


def test_what_the_nodes_forgot_is_said_per_node() -> None:
    from harness.backends.kube.runcluster import forgotten_notes

    assert forgotten_notes({}) == []  # kind: its nodes' tables are flushed
    (said,) = forgotten_notes({"w2": 12, "w1": 35})
    assert "(w1 35, w2 12 entries" in said
    assert "other flows were kept" in said
    (unpriv,) = forgotten_notes({"w1": None, "w2": None})
    assert "not deleted" in unpriv
    assert "--allow-disruptive" in unpriv
