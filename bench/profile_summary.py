"""Where the matrix's wall time goes, from a ``py-spy record --idle -f raw`` profile.

    sudo .venv/bin/py-spy record --idle --nonblocking -r 50 -f raw -o /tmp/m.spy -- \\
        .venv/bin/python -m bench.matrix
    .venv/bin/python -m bench.profile_summary /tmp/m.spy [--rate 50]

Each sample (idle ones included) is one tick of wall time of the runner process. A sample is
charged to the innermost frame whose function is named below; the rest is "other".
"""

from __future__ import annotations

import argparse
from collections import Counter

# innermost match wins; (function name, label)
BUCKETS: tuple[tuple[str, str], ...] = (
    ("_wait_ready", "topology: wait for servers ready"),
    ("_build", "topology: build (namespaces, links, rules, servers)"),
    ("enable_nodelocal", "NodeLocal: start caches + wait"),
    ("disable_nodelocal", "NodeLocal: stop"),
    ("_restart_coredns", "CoreDNS restart"),
    ("race_fault", "race fault: nft rule + pin"),
    ("flush_conntrack", "conntrack -F"),
    ("_counters", "nft counters read"),
    ("race_fault_hits", "nft fault counter read"),
    ("stop", "sampler stop (conntrack -L, kmsg)"),
    ("spawn", "spawn load worker"),
    ("measure", "waiting for the load worker (load + drain)"),
    ("apply_node_sysctls", "sysctls"),
    ("evidence", "evidence (iptables-save, conntrack -S)"),
    ("__exit__", "teardown"),
    ("close", "teardown"),
    ("undo_journal", "journal replay"),
    ("restore_stale", "restore_stale at run start"),
    ("acquire", "host lock wait"),
    ("run_scenario", "runner other"),
)


def summarize(path: str, rate: float, root: str = "run_matrix") -> list[tuple[str, float]]:
    totals: Counter[str] = Counter()
    names = dict(BUCKETS)
    with open(path) as f:
        lines = f.read().splitlines()
    for line in lines:
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        frames = [f.split(" (")[0].rsplit(".", 1)[-1] for f in stack.split(";")]
        if root not in frames:
            continue
        label = "other"
        for fn in reversed(frames):
            if fn in names:
                label = names[fn]
                break
        totals[label] += int(n)
    return [(k, v / rate) for k, v in totals.most_common()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("profile")
    ap.add_argument("--rate", type=float, default=50.0, help="py-spy -r. Default: 50")
    args = ap.parse_args()
    rows = summarize(args.profile, args.rate)
    total = sum(v for _, v in rows)
    for label, secs in rows:
        print(f"{secs:7.1f} s  {100 * secs / total:5.1f} %  {label}")
    print(f"{total:7.1f} s  total sampled")


if __name__ == "__main__":
    main()
