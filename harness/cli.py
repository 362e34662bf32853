"""The ``conntrack-harness`` command.

Exit codes: 0 every expectation held; 1 an expectation was violated; 2 bad input (the message
names the field); 3 backend failure; 4 restore failed (the host is not back to its state).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import __version__
from harness.errors import BadInput, HarnessError, RestoreFailed
from harness.result import PhaseResult, RunResult

if TYPE_CHECKING:
    from harness.backends.base import BackendOptions


def write_reports(
    result: RunResult, report_dir: Path, scenario_text: str, evidence_dir: Path | None = None
) -> list[Path]:
    """result.json plus the files built from it: HTML, Markdown, JUnit XML, bug bundle."""
    from harness.report import render_html, render_junit, render_markdown, write_bundle
    from harness.report.bundle import NodeEnv

    report_dir.mkdir(parents=True, exist_ok=True)
    out = {
        "result.json": json.dumps(result, indent=2),
        "report.html": render_html(result),
        "summary.md": render_markdown(result),
        "junit.xml": render_junit(result),
    }
    paths = []
    for name, text in out.items():
        (report_dir / name).write_text(text)
        paths.append(report_dir / name)
    nodes: dict[str, NodeEnv] = {}
    pods: dict[str, str] = {}
    pcaps: dict[str, Path] = {}
    ev = evidence_dir or report_dir / "evidence"
    if ev.is_dir():
        for d in sorted(ev.iterdir()):
            if d.name == "pcap":
                pcaps = {f.stem: f for f in sorted(d.glob("*.pcap"))}
            elif d.name == "pods":
                for pod in sorted(d.iterdir()):
                    rc = pod / "resolv.conf"
                    if rc.exists():
                        pods[pod.name] = rc.read_text()
            elif d.is_dir():
                ipt, cts = d / "iptables-save.txt", d / "conntrack-S.txt"
                extra = {
                    f.name: f.read_text() for f in d.iterdir() if f.name not in (ipt.name, cts.name)
                }
                nodes[d.name] = NodeEnv(
                    ipt.read_text() if ipt.exists() else None,
                    cts.read_text() if cts.exists() else None,
                    extra,
                )
    paths.append(
        write_bundle(
            result,
            report_dir / "bundle.tar.gz",
            scenario=scenario_text,
            nodes=nodes,
            pod_resolv_conf=pods,
            pcaps=pcaps,
        )
    )
    return paths


def _existing_file(value: str) -> str:
    if not Path(value).expanduser().is_file():
        raise argparse.ArgumentTypeError(f"no such file: {value}")
    return str(Path(value).expanduser())


def backend_options(args: argparse.Namespace) -> BackendOptions:
    """The run's cluster-backend flags (checked against --backend by the runner)."""
    from harness.backends.base import BackendOptions

    return BackendOptions(
        keep_cluster=args.keep_cluster,
        allow_disruptive=args.allow_disruptive,
        kubeconfig=args.kubeconfig,
        loadgen_image=args.loadgen_image,
        capture_pcap=args.pcap,
    )


def cmd_run(args: argparse.Namespace) -> int:
    from harness.runner import run_scenario
    from harness.scenario.loader import load_scenario

    scenario = load_scenario(args.scenario)  # bad input -> exit 2 before any host change
    report_dir = Path(args.report_dir) if args.report_dir else None
    if report_dir:
        report_dir.mkdir(parents=True, exist_ok=True)
    print(
        f"conntrack-harness {__version__}: scenario {scenario.name} "
        f"({len(scenario.phases)} phases) on {args.backend}",
        file=sys.stderr,
    )

    from harness.metrics.prometheus import HarnessMetrics

    metrics = HarnessMetrics()
    textfile = (
        Path(args.metrics_textfile)
        if args.metrics_textfile
        else (report_dir / "metrics.prom" if report_dir else None)
    )
    if args.metrics_port is not None:
        port = metrics.serve(args.metrics_port)
        print(f"metrics: http://127.0.0.1:{port}/metrics (during the run)", file=sys.stderr)
    from harness.report.progress import make_progress

    reporter = make_progress()
    current = {"phase": ""}

    def progress(phase: str, elapsed: float, total: float, info: dict[str, Any]) -> None:
        cmax = info.get("max", 0) or 1
        for node, count in info.get("conntrack", {}).items():
            metrics.observe_conntrack(node, count, cmax)
        if phase != current["phase"]:
            current["phase"] = phase
            reporter.phase_started(phase, total)
        fill = " ".join(
            f"{n} {c}/{cmax} ({100 * c / cmax:.0f}%)" for n, c in info.get("conntrack", {}).items()
        )
        reporter.update(elapsed, f"conntrack {fill}")

    def on_phase(p: PhaseResult) -> None:
        d = p["dns"]
        reporter.phase_finished(
            p["name"] + (" [INJECTED]" if p["injected"] else ""),
            f"{p['verdict'].upper()}: {d['lookups']} lookups, {d['timeouts']} timed out, "
            f"conntrack peak {p['conntrack']['peak_count']}, drop {p['conntrack']['drop']}",
        )
        metrics.load_result({"phases": [p]})  # type: ignore[typeddict-item]
        if textfile:
            metrics.write_textfile(textfile)

    try:
        result = run_scenario(
            scenario,
            scenario_file=str(args.scenario),
            backend=args.backend,
            report_dir=report_dir,
            force=args.force,
            wait_s=args.wait,
            progress=progress,
            on_phase=on_phase,
            command=shlex.join(["conntrack-harness", *sys.argv[1:]]),
            options=backend_options(args),
        )
    finally:
        reporter.close()
        metrics.close()
    from harness.report import print_verdict_table

    print_verdict_table(result)
    if report_dir:
        text = Path(args.scenario).read_text()
        (report_dir / "scenario.yaml").write_text(text)
        paths = write_reports(result, report_dir, text)
        print("reports: " + " ".join(str(p) for p in paths))
    return 0 if result["verdict"] == "pass" else 1


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"a positive whole number is needed, not {value!r}")
    return n


def _load_result(path: str) -> RunResult:
    p = Path(path)
    if not p.is_file():
        raise BadInput("result file not found", field="RESULT_JSON", value=path)
    try:
        data = json.loads(p.read_text())
    except json.JSONDecodeError as e:
        raise BadInput(f"not JSON: {e}", field="RESULT_JSON", value=path) from None
    if not isinstance(data, dict) or "phases" not in data:
        raise BadInput(
            "not a conntrack-harness result.json (no 'phases')", field="RESULT_JSON", value=path
        )
    return data  # type: ignore[return-value]


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report import print_verdict_table

    result = _load_result(args.result)
    out = Path(args.out) if args.out else Path(args.result).parent
    scen = Path(args.result).parent / "scenario.yaml"
    text = scen.read_text() if scen.exists() else "# scenario file not kept with this result\n"
    print_verdict_table(result)
    paths = write_reports(result, out, text, Path(args.result).parent / "evidence")
    print("reports: " + " ".join(str(p) for p in paths))
    return 0


def cmd_diagnose(args: argparse.Namespace) -> int:
    from harness.diagnose import diagnose_phase
    from harness.diagnose.live import diagnose_live

    if args.result:
        result = _load_result(args.result)
        for p in result["phases"]:
            d = diagnose_phase(p)
            print(f"{p['name']}: {d.label} ({d.confidence})")
            for e in d.evidence:
                print(f"    - {e}")
            print(f"    remediation: {d.remediation}")
        return 0
    _readings, d = diagnose_live(args.netns, resolv_conf=args.resolv_conf)
    where = f"namespace {args.netns}" if args.netns else "this host"
    print(f"{where}: {d.label} ({d.confidence})")
    for e in d.evidence:
        print(f"    - {e}")
    print(f"    remediation: {d.remediation}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from harness.kernel.journal import HostLock
    from harness.restore import restore_stale, set_conntrack_max
    from harness.runner import require_root

    require_root()
    with HostLock(args.wait):
        report = restore_stale(orphans=args.orphans)
        if args.conntrack_max is not None:
            set_conntrack_max(args.conntrack_max, report)
    for line in report.lines():
        print(line)
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    from harness.doctor import checks

    ok = True
    for c in checks():
        ok &= c.ok
        print(f"[{'ok' if c.ok else '!!'}] {c.name:<22} {c.detail}")
    return 0 if ok else 2


def cmd_schema(args: argparse.Namespace) -> int:
    from harness.scenario.loader import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.scenario.loader import load_scenario

    for f in args.files:
        s = load_scenario(f)
        print(f"{f}: ok ({s.name}, {len(s.phases)} phases)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="conntrack-harness",
        description="Reproduce conntrack-caused DNS timeouts and prove which remediation works.",
    )
    ap.add_argument("--version", action="version", version=__version__)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run a scenario file (exit 0 pass, 1 violated, 2 bad input)")
    r.add_argument("scenario", metavar="SCENARIO_FILE")
    r.add_argument("--backend", default="netns", help="netns (default), kind, kubeconfig or k3s")
    r.add_argument("--report-dir", metavar="DIR", help="write result.json and reports here")
    r.add_argument(
        "--force",
        action="store_true",
        help="allow shrinking nf_conntrack_max close to the host's live count",
    )
    r.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for another run's lock (default: refuse at once)",
    )
    r.add_argument(
        "--pcap",
        action="store_true",
        help="netns backend: tcpdump DNS in the client pods and put each phase's unanswered "
        "same-port A/AAAA pairs in the bug bundle (pcap/<phase>.pcap). Costs CPU. Default: off",
    )
    m = r.add_argument_group("metrics (Prometheus)")
    m.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve metrics on 127.0.0.1:PORT during the run (0: any free port)",
    )
    m.add_argument(
        "--metrics-textfile",
        metavar="FILE",
        help="node-exporter textfile, rewritten after each phase "
        "(default: REPORT_DIR/metrics.prom)",
    )
    k = r.add_argument_group("cluster backends (kind, kubeconfig, k3s; see docs/backends.md)")
    k.add_argument(
        "--kubeconfig",
        metavar="FILE",
        type=_existing_file,
        help="kubeconfig backend: the cluster to use. Default: $KUBECONFIG or ~/.kube/config",
    )
    k.add_argument(
        "--loadgen-image",
        metavar="REPO",
        help="use the pushed images REPO:glibc and REPO:musl (required for kubeconfig; kind "
        "and k3s then load them instead of building loadgen/docker/). Default: build them",
    )
    k.add_argument(
        "--allow-disruptive",
        action="store_true",
        help="kubeconfig backend: allow node sysctls, the injected fault, CoreDNS changes and "
        "NodeLocal DNSCache on the existing cluster (all undone at the end). Default: refuse",
    )
    k.add_argument(
        "--keep-cluster",
        action="store_true",
        help="kind backend: keep the cluster after the run (as CTH_KIND_KEEP=1). Default: delete",
    )
    r.set_defaults(func=cmd_run)
    rs = sub.add_parser("restore", help="undo what a killed run left on this host")
    rs.add_argument("--wait", type=float, default=0.0, metavar="SECONDS")
    rs.add_argument(
        "--orphans",
        action="store_true",
        help="also delete cth- namespaces that no journal accounts for and no live run owns "
        "(left by a run whose journal was lost). Default: only name them",
    )
    rs.add_argument(
        "--conntrack-max",
        type=_positive_int,
        metavar="ENTRIES",
        help="set net.netfilter.nf_conntrack_max to ENTRIES, for when no journal recorded its "
        "original (the kernel's default is nf_conntrack_buckets)",
    )
    rs.set_defaults(func=cmd_restore)
    d = sub.add_parser("doctor", help="check prerequisites (read-only)")
    d.set_defaults(func=cmd_doctor)
    s = sub.add_parser("schema", help="print the scenario file JSON Schema")
    s.set_defaults(func=cmd_schema)
    rp = sub.add_parser("report", help="build HTML/Markdown/JUnit/bundle from a result.json")
    rp.add_argument("result", metavar="RESULT_JSON")
    rp.add_argument("--out", metavar="DIR", help="default: the result's directory")
    rp.set_defaults(func=cmd_report)
    dg = sub.add_parser("diagnose", help="name the cause: from a result.json, or live (read-only)")
    dg.add_argument("result", nargs="?", metavar="RESULT_JSON")
    dg.add_argument("--netns", metavar="NAME", help="live: read this namespace, not the host")
    dg.add_argument("--resolv-conf", metavar="FILE", help="live: resolv.conf to inspect")
    dg.set_defaults(func=cmd_diagnose)
    v = sub.add_parser("validate", help="validate scenario files without running them")
    v.add_argument("files", nargs="+")
    v.set_defaults(func=cmd_validate)
    from harness.upstream.cli import add_parser as add_upstream  # upstream build|list

    add_upstream(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except RestoreFailed as e:
        print(f"conntrack-harness: RESTORE FAILED: {e}", file=sys.stderr)
        return e.exit_code
    except BadInput as e:
        print(f"conntrack-harness: {e}", file=sys.stderr)
        return e.exit_code
    except HarnessError as e:
        print(f"conntrack-harness: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("\nconntrack-harness: interrupted; host state restored", file=sys.stderr)
        return 130
    except BaseException as e:
        from harness.runner import Interrupted

        if isinstance(e, Interrupted):
            print(f"\nconntrack-harness: {e}; host state restored", file=sys.stderr)
            return 128 + e.signum  # the shell's convention: 143 SIGTERM, 129 SIGHUP
        raise


if __name__ == "__main__":
    sys.exit(main())
