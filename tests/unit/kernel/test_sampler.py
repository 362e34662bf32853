"""The one conntrack sampler over the probe protocol, with scripted probes (no kernel)."""

from __future__ import annotations

from harness.backends.kube.sampling import KubeSampler
from harness.kernel.sampler import ConntrackSampler, Reading

LISTING = (
    "udp 17 29 src=10.244.1.2 dst=10.96.0.10 sport=5000 dport=53 [UNREPLIED] src=10.244.2.3 "
    "dst=10.244.1.2 sport=53 dport=5000 mark=0 use=1\n"
    "tcp 6 117 TIME_WAIT src=10.244.1.2 dst=10.96.0.20 sport=1 dport=80 src=10.244.2.4 "
    "dst=172.18.0.11 sport=80 dport=2 [ASSURED] mark=0 use=1\n"
)


class ScriptedProbe:
    """Counts from a script; stat reads counted, so the sampler's stat cadence shows."""

    def __init__(self, node: str, counts: list[int], inode: int | None = 7) -> None:
        self.node, self.where = node, f"ns-{node}"
        self.counts = iter(counts)
        self.stat_reads = 0
        self.listings = 0
        self.inode = inode

    def read(self, with_stats: bool) -> Reading:
        stats = None
        if with_stats:
            self.stat_reads += 1
            stats = {"drop": 10 * self.stat_reads, "insert_failed": 0}
        return Reading(next(self.counts, 0), stats)

    def listing(self) -> str:
        self.listings += 1
        return LISTING

    def netns_inode(self) -> int | None:
        return self.inode


class Log:
    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.closed = False

    def read_new(self) -> list[str]:
        return self.lines

    def close(self) -> None:
        self.closed = True


def clock() -> object:
    t = iter(float(i) for i in range(1000))
    return lambda: next(t)


def test_rounds_counts_stats_snapshot_and_table_full_lines() -> None:
    probe = ScriptedProbe("node-1", [5, 10, 50, 95, 100])  # start() reads the first
    log = Log(
        [
            "nf_conntrack: table full in netns 7, dropping packet",
            "nf_conntrack: table full in netns 8, dropping packet",
            "nf_conntrack: table full, dropping packet",
        ]
    )
    s = ConntrackSampler(
        [probe],
        100,
        kernel_log=lambda: log,
        stat_every=2,
        clock=clock(),  # type: ignore[arg-type]
    )
    s.start()
    for _ in range(4):
        s.sample()
    series = s.stop()["node-1"]
    assert [c for _, c in series.timeline] == [10, 50, 95, 100]
    assert len(series.stat_timeline) == 2  # every 2nd round
    assert series.delta == {"drop": 10 * probe.stat_reads - 10, "insert_failed": 0}
    assert probe.listings == 1  # once, at the first round at >= 90 % of max
    assert series.states_at_peak == {"UDP_UNREPLIED": 1, "TIME_WAIT": 1}
    assert series.dns_entries_at_peak == 1
    assert series.table_full == ["nf_conntrack: table full in netns 7, dropping packet"]
    assert log.closed
    assert any("name no network namespace" in n for n in s.notes)


def test_no_kernel_log_is_a_note_and_a_snapshot_is_still_taken_at_stop() -> None:
    probe = ScriptedProbe("node-1", [1, 2])
    s = ConntrackSampler([probe], 100, kernel_log=lambda: None)
    s.start()
    s.sample()
    s.stop()
    assert probe.listings == 1
    assert any("kernel log not readable" in n for n in s.notes)


class Access:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def stat(self, node: str) -> dict[str, int]:
        self.calls.append(node)
        n = len(self.calls)
        return {
            "count": 10 * n,
            "max": 100,
            "entries": 10 * n,
            "drop": n,
            "early_drop": 0,
            "insert_failed": 0,
            "clash_resolve": 0,
            "insert": n,
            "invalid": 0,
        }

    def listing(self, node: str) -> str:
        return ""

    def netns_inode(self, node: str) -> int | None:
        return None


def test_the_exec_probe_reads_the_real_node_under_its_label() -> None:
    access = Access()
    s = KubeSampler(access, {"node-1": "kind-worker"}, 100)  # type: ignore[arg-type]
    s.start()
    live = s.sample()
    series = s.stop()
    assert set(access.calls) == {"kind-worker"}
    assert set(live) == {"node-1"}
    assert series["node-1"].ns == "kind-worker"
    assert len(series["node-1"].stat_timeline) == 1  # one command gives count and stats
    assert series["node-1"].delta["drop"] == 2
