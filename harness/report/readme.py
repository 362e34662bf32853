"""The README's figures, generated from their sources: ``python -m harness.report.readme``.

The blocks of README.md sit between marker comments and are written here, never by hand:

- ``demo``: the machine and upstream parts, the verdict table, the run id, date and wall time,
  and the steady-state and agreement figures of the demo run, from a real run's result.json
  (committed as ``docs/figures/demo-result.json``);
- ``rollout`` (inline, in the scenarios table): the CoreDNS rollout's figures, from a real
  run of ``scenarios/coredns-rollout.yaml`` (``docs/figures/coredns-rollout-result.json``);
- ``bench``: each bench figure's latest measurement (median [min, max] over its repeats, the
  target, the date and commit of the run), from ``bench/records.jsonl`` (:mod:`bench.record`);
- ``upgrade``: what ``compare --run scenarios/udp-scale-to-zero.yaml --parts kube-proxy``
  printed across the pinned releases, pair by pair (each side's verdict, stale entries,
  blackholed and refused queries, and compare's exit), from the comparisons' JSON as
  ``compare --json`` printed it (committed as ``docs/figures/upgrade/A-B.json``).

``--check`` exits 1 when README.md differs from what the sources give (a unit test runs it);
``--demo-from RESULT_JSON`` first copies a new demo run's result.json into place. The text
functions are pure; :func:`main` reads and writes the files.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from cthcommon.stats import format_p
from harness.judge.summary import PhaseSummary, rate_with_ci, remediation_verdicts, summarize
from harness.results.schema import PhaseResult, RunResult

README = Path("README.md")
DEMO_RESULT = Path("docs/figures/demo-result.json")
ROLLOUT_RESULT = Path("docs/figures/coredns-rollout-result.json")
RECORDS = Path("bench/records.jsonl")
UPGRADE_DIR = Path("docs/figures/upgrade")
COMMAND = "python -m harness.report.readme"


class MarkerError(ValueError):
    """README.md lacks a block's markers, or has them twice."""


def markers(name: str) -> tuple[str, str]:
    return f"<!-- figures:{name} -->", f"<!-- /figures:{name} -->"


def replace_block(text: str, name: str, body: str) -> str:
    """``text`` with what lies between block ``name``'s markers replaced by ``body``: on
    lines of their own, or inline (in a table cell) when the markers share a line."""
    start, end = markers(name)
    if text.count(start) != 1 or text.count(end) != 1:
        raise MarkerError(f"README.md needs exactly one {start} ... {end} pair")
    head, rest = text.split(start)
    old, tail = rest.split(end)
    if "\n" not in old:
        return f"{head}{start}{' '.join(body.split())}{end}{tail}"
    return f"{head}{start}\n{body.strip()}\n{end}{tail}"


def _n(x: float) -> str:
    """1957 -> 1,957; 1.25 -> 1.2."""
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


def _kernel(release: str) -> str:
    """6.18.3-cloud-amd64 -> 6.18."""
    m = re.match(r"(\d+\.\d+)", release)
    return m.group(1) if m else release


# --- demo --------------------------------------------------------------------------------


def machine_line(result: RunResult) -> str:
    env = result["environment"]
    comps: Mapping[str, Mapping[str, str]] = env.get("components") or {}
    cores = f", {env['cpus']} cores" if env.get("cpus") else ""

    def ver(binary: str) -> str:
        return str((comps.get(binary) or {}).get("version", "?"))

    parts = []
    kube = [b for b in ("kube-apiserver", "kube-controller-manager", "kube-proxy") if b in comps]
    if kube:
        versions = {ver(b) for b in kube}
        mode = (comps.get("kube-proxy") or {}).get("mode")
        names = ", ".join(kube[:-1]) + (f" and {kube[-1]}" if len(kube) > 1 else kube[0])
        parts.append(f"{names} {'/'.join(sorted(versions))}" + (f" in {mode} mode" if mode else ""))
    parts += [f"{label} {ver(b)}" for b, label in (("etcd", "etcd"), ("coredns", "CoreDNS"))]
    sources = {str((comps.get(b) or {}).get("source")) for b in (*kube, "etcd", "coredns")}
    how = "all built here by `upstream build`" if sources <= {"go"} else "from `upstream build`"
    return (
        f"On this machine (Linux {_kernel(env['kernel'])}{cores}), on the real upstream parts "
        f"({', '.join(parts)}, {how}), `make demo` measured:"
    )


def _steady_cell(phases: Sequence[PhaseResult]) -> str:
    ss = [p["steady_state"] for p in phases if "steady_state" in p]
    if not ss:
        return "-"
    if not all(s.get("reached") for s in ss):
        return "NO (inconclusive)"
    load = max(float(s.get("occupancy_vs_max", 0.0)) for s in ss)
    return "yes (full table)" if load >= 1.0 else f"yes (load holds {load:.0%} of max)"


def _verdict_cells(summaries: list[PhaseSummary]) -> dict[str, str]:
    out = {}
    for s in summaries:
        if s.is_baseline:
            out[s.name] = "reproduced" if s.shown == "pass" and s.timeouts else s.shown
    for v in remediation_verdicts(summaries):
        cell = f"{v.comparison.outcome}, {format_p(v.comparison.log10_p)}"
        out[v.after.name] = cell if v.after.shown == "pass" else f"{cell}; {v.after.shown}"
    for s in summaries:
        out.setdefault(s.name, s.shown)
    return out


def _drops(s: PhaseSummary) -> str:
    """As the terminal table: ``drop``, and ``early_drop`` when there were any."""
    return f"{s.drop:,} (+{s.early_drop:,} early_drop)" if s.early_drop else f"{s.drop:,}"


def demo_table(result: RunResult) -> str:
    summaries = summarize(result)
    verdicts = _verdict_cells(summaries)
    rows = [
        "| phase | remediations | table max | lookups | timeout rate [95% CI] | "
        "conntrack drops | steady state | verdict |",
        "|---|---|---:|---:|---|---:|---|---|",
    ]
    for s in summaries:
        table_max = max(p["conntrack"]["max"] for p in s.phases)
        rows.append(
            f"| {s.name} | {', '.join(r.split(':')[0] for r in s.remediations) or '-'} | "
            f"{table_max:,} | {s.lookups:,} | "
            f"{rate_with_ci(s)} | {_drops(s)} | {_steady_cell(s.phases)} | {verdicts[s.name]} |"
        )
    return "\n".join(rows)


def _wall_s(result: RunResult) -> float:
    t0 = datetime.fromisoformat(result["started_at"])
    t1 = datetime.fromisoformat(result["finished_at"])
    return (t1 - t0).total_seconds()


def _warmup(phase: PhaseResult) -> Mapping[str, Any]:
    ss: Mapping[str, Any] = phase.get("steady_state") or {}
    w: Mapping[str, Any] = ss.get("warmup") or {}
    return w


def _warmup_sentence(phase: PhaseResult) -> str:
    ss: Mapping[str, Any] = phase.get("steady_state") or {}
    w = _warmup(phase)
    if w.get("method") != "aged-fill":
        return ""
    opened = {str(f.get("kind")): int(f.get("opened", 0)) for f in w.get("flows") or []}
    spreads: Mapping[str, Mapping[str, float]] = w.get("remaining_lifetimes_at_load_s") or {}
    tcp = spreads.get("tcp-TIME_WAIT") or {}
    udp = spreads.get("udp") or {}
    http = sum(n for k, n in opened.items() if k.startswith("http"))
    dns = sum(n for k, n in opened.items() if k.startswith("dns"))
    what = []
    if http:
        q = (
            f", quartiles {_n(tcp['p25'])}/{_n(tcp['p50'])}/{_n(tcp['p75'])} s"
            if {"p25", "p50", "p75"} <= set(tcp)
            else ""
        )
        over = f" over [{_n(tcp['min'])}, {_n(tcp['max'])}] s" if {"min", "max"} <= set(tcp) else ""
        what.append(
            f"{http:,} real connections whose remaining TIME_WAIT at load start was{over}{q}"
        )
    if dns:
        over = (
            f" with {_n(udp['min'])}-{_n(udp['max'])} s left" if {"min", "max"} <= set(udp) else ""
        )
        what.append(f"{dns:,} DNS flows{over}")
    full = float(ss.get("occupancy_vs_max", 0.0)) >= 1.0
    return (
        f"The baseline's steady state is {'a full table' if full else 'below its table'}: an "
        f"aged warm-up opened it in "
        f"{_n(float(w.get('duration_s', 0.0)))} s before the load ({', and '.join(what)}, as in "
        f"steady state; labelled `steady_state.warmup`), so the table turned over from the "
        f"first second."
    )


def _steady_claim(phases: Sequence[PhaseResult]) -> str:
    where = "(`steady_state` in result.json; the `steady` column of the terminal table)"
    missed = [p["name"] for p in phases if not p.get("steady_state", {"reached": False})["reached"]]
    if not missed:
        return f"Every phase was measured in its load's steady state {where}."
    return f"Not measured in its load's steady state {where}: {', '.join(missed)}."


def demo_text(result: RunResult) -> str:
    """The demo block: machine line, verdict table, run line, steady-state and agreement."""
    phases = result["phases"]
    base = next((p for p in phases if not p["remediations"]), phases[0])
    others = [p for p in phases if p is not base]
    unwarmed = [p["name"] for p in others if _warmup(p).get("method") != "aged-fill"]
    loads = [
        f"{p['name']} {float(p['steady_state'].get('occupancy_vs_max', 0.0)):.0%}"
        for p in others
        if "steady_state" in p
    ]
    agreements = [p["agreement"] for p in phases if "agreement" in p]
    lost = sum(a["client_unanswered"] for a in agreements)
    dropped = sum(a["node_dropped"] for a in agreements)
    unanswered = sum(a["server_unanswered"] for a in agreements)
    agree = (
        f"Every DNS query the clients lost was counted as dropped inside a node: {lost:,} lost, "
        f"{dropped:,} dropped."
        if lost == dropped and not unanswered
        else f"The clients lost {lost:,} DNS queries; {dropped:,} were counted as dropped inside "
        f"the nodes and {unanswered:,} as received but not answered by the DNS pods "
        f"(`agreement` in result.json)."
    )
    warmed = len(others) - len(unwarmed)
    steady = (
        f"The other phases' loads hold {', '.join(loads)} of their tables in steady state, so "
        + ("they need no warm-up." if not warmed else f"{warmed} of them had one.")
        if loads
        else ""
    )
    run_line = (
        f"(run {result['run_id']}, {result['started_at'][:10]}, "
        f"{_n(round(_wall_s(result)))} s from start to end with the parts already built; "
        f"its result.json is `{DEMO_RESULT}`.)"
    )
    prose = " ".join(
        s
        for s in (
            run_line,
            _steady_claim(phases),
            _warmup_sentence(base),
            steady,
            'A phase that never reached its steady state is inconclusive, never "fixed".',
            agree,
        )
        if s
    )
    return f"{_wrap(machine_line(result))}\n\n{demo_table(result)}\n\n{_wrap(prose)}"


def _wrap(text: str, width: int = 95) -> str:
    lines: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "\n".join([*lines, line] if line else lines)


# --- rollout -----------------------------------------------------------------------------


def rollout_text(result: RunResult) -> str:
    """The coredns-rollout row's figures: the phase that rolled CoreDNS, from its result."""
    phase = next((p for p in result["phases"] if "rollout" in p), None)
    if phase is None:
        raise ValueError(f"{result['scenario']} ({result['run_id']}) has no rollout phase")
    r: Mapping[str, Any] = phase["rollout"]
    comps: Mapping[str, Mapping[str, str]] = result["environment"].get("components") or {}
    proxy = comps.get("kube-proxy") or {}
    dns = phase["dns"]
    qps = dns["queries_sent"] / phase["duration_s"] if phase["duration_s"] else 0.0
    took = (
        f"took {float(r['finished_s']) - float(r['started_s']):.1f} s"
        if r.get("finished_s") is not None and r.get("started_s") is not None
        else "had not finished when the load ended"
    )
    w = r["window"]
    srv = phase["server"]
    answered = (
        f"all {srv['received']:,} queries of the phase were answered"
        if srv["answered"] == srv["received"]
        else f"{srv['answered']:,} of the phase's {srv['received']:,} queries were answered"
    )
    return (
        f"Here, {dns['resolver']} at {qps:,.0f} queries/s on kube-proxy "
        f"{proxy.get('version', '?')} {proxy.get('mode', '')}: the rollout {took}, "
        f"{w['timeouts']:,} of {w['lookups']:,} lookups during it timed out, and {answered} "
        f"(run {result['run_id']}, `{ROLLOUT_RESULT}`)"
    )


# --- bench -------------------------------------------------------------------------------


def _v(x: Any, unit: str) -> str:
    if x is None:
        return "n/a"
    x = float(x)
    if unit == "fraction":
        return f"{x * 100:.2g}%"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _target(target: str, unit: str) -> str:
    """The target as the value is shown: a fraction's in percent (``< 0.05`` -> ``< 5%``)."""
    op, _, number = target.partition(" ")
    try:
        return f"{op} {_v(float(number), unit)}" if unit == "fraction" else target
    except ValueError:
        return target


def bench_text(latest: Mapping[str, Mapping[str, Any]]) -> str:
    """The bench block: each figure's latest record (:func:`bench.record.latest_figures`)."""
    if not latest:
        return "No bench run recorded yet (`make bench` appends to `bench/records.jsonl`)."
    rows = [
        "| figure | median [min, max] | unit | repeats | target | met | measured |",
        "|---|---|---|---:|---|---|---|",
    ]
    for name in sorted(latest):
        f = latest[name]
        unit = str(f["unit"])
        spread = (
            _v(f["median"], unit)
            if f["min"] == f["max"]
            else f"{_v(f['median'], unit)} [{_v(f['min'], unit)}, {_v(f['max'], unit)}]"
        )
        shown_unit = "%" if unit == "fraction" else unit
        met = "yes" if f["met"] else "NO"
        if f.get("value") is not None and f["value"] != f["median"]:
            met += f" ({_v(f['value'], unit)} judged: {(f.get('detail') or {}).get('note', '')})"
        rows.append(
            f"| `{name}` | {spread} | {shown_unit} | {f['repeats']} | "
            f"{_target(str(f['target']), unit)} | "
            f"{met} | {str(f['date'])[:10]}, {str(f['commit'])[:8]} |"
        )
    notes = []
    runs = {(str(f["date"]), str(f["commit"])): f for f in latest.values()}
    for (date, commit), f in sorted(runs.items()):
        m: Mapping[str, Any] = f.get("machine") or {}
        load = m.get("load_avg_before") or [None]
        after = m.get("load_avg_after") or [None]
        notes.append(
            f"The run of {date[:10]} ({commit[:8]}): {m.get('cores', '?')} cores, "
            f"{m.get('memory_gib', '?')} GiB, Linux {f.get('kernel', '?')}, 1-min load "
            f"{load[0]} before and {after[0]} after (above its cores: other work shared the "
            "machine)."
            if load[0] is not None
            and after[0] is not None
            and max(load[0], after[0]) > float(m.get("cores") or 1)
            else f"The run of {date[:10]} ({commit[:8]}): {m.get('cores', '?')} cores, "
            f"{m.get('memory_gib', '?')} GiB, Linux {f.get('kernel', '?')}."
        )
    for name in sorted(latest):
        d: Mapping[str, Any] = latest[name].get("detail") or {}
        if d.get("how"):
            when = f", built {d['built_at']}" if d.get("built_at") else ""
            what = f" ({d['kubernetes']}'s parts{when})" if d.get("kubernetes") else ""
            notes.append(f"`{name}`{what}: {d['how']}.")
    return "\n".join(rows) + ("\n\n" + _wrap(" ".join(notes)) if notes else "")


# --- upgrade -----------------------------------------------------------------------------


def _semver(v: str) -> tuple[int, ...]:
    """v1.35.4 -> (1, 35, 4); anything else sorts first."""
    m = re.match(r"v?(\d+)\.(\d+)\.(\d+)", v)
    return tuple(int(x) for x in m.groups()) if m else ()


def _side_version(comparison: Mapping[str, Any], side: str, binary: str) -> str:
    comps: Mapping[str, Mapping[str, Any]] = comparison["environment"].get("components") or {}
    return str((comps.get(binary) or {}).get(side) or "?")


def compare_exit(comparison: Mapping[str, Any]) -> int:
    """The exit ``compare`` gives this comparison (harness.cli.cmd_compare): 1 when a verdict
    changed, else 6 when a phase is inconclusive, else 0."""
    if comparison["verdict_changed"]:
        return 1
    return 6 if comparison["inconclusive"] else 0


def _upgrade_side(s: Mapping[str, Any]) -> str:
    e: Mapping[str, Any] | None = s.get("endpoints")
    if not e:
        return str(s["verdict"])
    again = e.get("answered_again_s_max")
    back = (
        ""
        if again is None
        else "; a same-port client never answered again"
        if again < 0  # compare's JSON keeps "never" as -1
        else f"; answered again within {again:.1f} s of the scale-up"
    )
    st: Mapping[str, Any] | None = s.get("statsd")
    sender = (
        f"; statsd with no endpoint: {int(st.get('blackholed', 0)):,} of "
        f"{int(st.get('window_sent', 0)):,} datagrams blackholed, "
        f"{int(st.get('rejected', 0)):,} rejected at the node"
        if st
        else ""
    )
    return (
        f"{s['verdict']} ({int(e.get('stale_entries_max', 0)):,} stale entries, "
        f"{int(e.get('client_flows_stale_max', 0)):,} of them the same-port clients'; "
        f"{int(e.get('blackholed', 0)):,} of {int(e.get('sent', 0)):,} same-port queries "
        f"blackholed, {int(e.get('refused', 0)):,} refused, "
        f"{int(e.get('rejected_silently', 0)):,} rejected at the node without an ICMP error"
        f"{back}{sender})"
    )


def upgrade_text(comparisons: Sequence[Mapping[str, Any]]) -> str:
    """The upgrade block: each recorded comparison (``compare --json``), oldest kube-proxy
    first: per phase, each side's verdict and endpoint figures, then compare's exit."""
    if not comparisons:
        raise ValueError(f"no comparison recorded in {UPGRADE_DIR}/")
    ordered = sorted(comparisons, key=lambda c: _semver(_side_version(c, "a", "kube-proxy")))
    first = ordered[0]
    kernel = first["environment"].get("kernel") or {}
    rest = {_side_version(c, s, "kube-apiserver") for c in ordered for s in ("a", "b")}
    scenarios = sorted({str(c["scenario"]) for c in ordered})
    lines = []
    per_release: dict[str, list[str]] = {}
    for c in ordered:
        a, b = (_side_version(c, s, "kube-proxy") for s in ("a", "b"))
        for version, side in ((a, "a"), (b, "b")):
            per_release.setdefault(version, []).extend(str(p[side]["verdict"]) for p in c["phases"])
        code = compare_exit(c)
        outcome = {1: "the upgrade changed a verdict", 6: "inconclusive"}.get(
            code, "no verdict changed"
        )
        phases = "; ".join(
            f"{p['name']}" + (f"#{p['repeat_index']}" if p["repeat_index"] else "") + ": "
            f"{a} {_upgrade_side(p['a'])} -> {b} {_upgrade_side(p['b'])}"
            for p in c["phases"]
        )
        item = f"{a} -> {b}, exit {code} ({outcome}; runs {c['a']}, {c['b']}): {phases}"
        lines.append("- " + _wrap(item, 93).replace("\n", "\n  "))
    head = (
        f"On this machine (Linux {_kernel(str(kernel.get('a', '?')))}), `compare --run` of "
        f"{', '.join(scenarios)} with `--parts kube-proxy` (each release's kube-proxy beside "
        f"{'/'.join(sorted(rest))}'s control plane and CoreDNS), pair by pair of pinned releases, "
        f"printed (stale entries: the most sampled in the nodes' tables once kube-proxy had "
        f"synced the Service's empty endpoints; the comparisons: `{UPGRADE_DIR}/*.json`):"
    )
    verdicts = "; ".join(
        f"{v} {', '.join(per_release[v])}" for v in sorted(per_release, key=_semver)
    )
    tail = f"Each release's verdicts, as measured (one per comparison it was in): {verdicts}."
    return f"{_wrap(head)}\n\n" + "\n".join(lines) + f"\n\n{_wrap(tail)}"


# --- files -------------------------------------------------------------------------------


def latest_figures(records: Path) -> dict[str, dict[str, Any]]:
    """Each figure's latest measured record in ``records`` (bench/records.jsonl)."""
    out: dict[str, dict[str, Any]] = {}
    if not records.exists():
        return out
    for line in records.read_text().splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        for f in rec.get("figures", []):
            if f.get("repeats"):
                out[f["name"]] = {
                    **f,
                    "date": rec["date"],
                    "commit": rec["commit"],
                    "machine": rec.get("machine") or {},
                    "kernel": rec.get("kernel", "?"),
                }
    return out


def render(
    readme: str,
    demo: RunResult,
    latest: Mapping[str, Mapping[str, Any]],
    rollout: RunResult | None = None,
    upgrade: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """README text with its blocks regenerated (pure); the rollout and upgrade blocks when
    given."""
    text = replace_block(readme, "demo", demo_text(demo))
    if rollout is not None:
        text = replace_block(text, "rollout", rollout_text(rollout))
    if upgrade is not None:
        text = replace_block(text, "upgrade", upgrade_text(upgrade))
    return replace_block(text, "bench", bench_text(latest))


def load(readme: str, demo: Path, rollout: Path) -> tuple[RunResult, RunResult | None]:
    """The results the README's blocks need (the rollout's only when it has that block)."""
    demo_result: RunResult = json.loads(demo.read_text())
    rollout_result: RunResult | None = None
    if markers("rollout")[0] in readme:
        rollout_result = json.loads(rollout.read_text())
    return demo_result, rollout_result


def load_upgrade(readme: str, folder: Path) -> list[dict[str, Any]] | None:
    """The recorded comparisons (``folder/*.json``) when the README has the upgrade block."""
    if markers("upgrade")[0] not in readme:
        return None
    return [json.loads(f.read_text()) for f in sorted(folder.glob("*.json"))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog=COMMAND, description=__doc__.splitlines()[0])
    ap.add_argument("--readme", type=Path, default=README, help=f"Default: {README}")
    ap.add_argument(
        "--demo",
        type=Path,
        default=DEMO_RESULT,
        help=f"the demo's result.json. Default: {DEMO_RESULT}",
    )
    ap.add_argument(
        "--rollout",
        type=Path,
        default=ROLLOUT_RESULT,
        help=f"coredns-rollout.yaml's result.json. Default: {ROLLOUT_RESULT}",
    )
    ap.add_argument("--records", type=Path, default=RECORDS, help=f"Default: {RECORDS}")
    ap.add_argument(
        "--upgrade",
        type=Path,
        default=UPGRADE_DIR,
        metavar="DIR",
        help=f"the recorded comparisons (`compare --json` output, one *.json per pair of "
        f"releases). Default: {UPGRADE_DIR}",
    )
    ap.add_argument(
        "--demo-from",
        type=Path,
        metavar="RESULT_JSON",
        help="copy this run's result.json (e.g. reports/demo/result.json) to --demo first",
    )
    ap.add_argument(
        "--rollout-from",
        type=Path,
        metavar="RESULT_JSON",
        help="copy a run of scenarios/coredns-rollout.yaml's result.json to --rollout first",
    )
    ap.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if README.md is stale"
    )
    args = ap.parse_args(argv)
    for src, dst in ((args.demo_from, args.demo), (args.rollout_from, args.rollout)):
        if src is not None and not args.check:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    try:
        old = args.readme.read_text()
        demo, rollout = load(old, args.demo, args.rollout)
        upgrade = load_upgrade(old, args.upgrade)
        new = render(old, demo, latest_figures(args.records), rollout, upgrade)
    except (OSError, ValueError, KeyError) as e:
        print(f"{COMMAND}: {e}", file=sys.stderr)
        return 2
    if new == old:
        print(f"{args.readme}: figures up to date")
        return 0
    if args.check:
        print(f"{args.readme}: figures differ from their sources; run `{COMMAND}`", file=sys.stderr)
        return 1
    args.readme.write_text(new)
    print(
        f"{args.readme}: figures regenerated from {args.demo}, {args.rollout}, {args.upgrade}, "
        f"{args.records}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
