"""The ``conntrack-harness`` command.

Exit codes: 0 every expectation held; 1 an expectation was violated (and only that); 2 bad
input or a refusal (the message names the field); 3 backend failure; 4 restore failed (the
host is not back to its state); 5 an internal error (the reports could not be written, or a
bug: the traceback is printed); 6 inconclusive: every expectation held, but a phase with
expectations was not measured in its load's steady state (never 0: the reason and the phase
length or warm-up that would make it conclusive are printed). A signal ends the run with
128 + its number.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import signal
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from cthcommon.errors import (
    BadInput,
    ExpectationViolated,
    HarnessError,
    Inconclusive,
    InternalError,
    RestoreFailed,
)
from harness import __version__
from harness.cliargs import add_wait, in_range
from harness.kernel.conntrack import CONNTRACK_MAX_MAX, CONNTRACK_MAX_MIN
from harness.results.schema import RunResult

if TYPE_CHECKING:
    from harness.backends.base import BackendOptions
    from harness.results.record import RunRecord


def _existing_file(value: str) -> str:
    if not Path(value).expanduser().is_file():
        raise argparse.ArgumentTypeError(f"no such file: {value}")
    return str(Path(value).expanduser())


def backend_options(args: argparse.Namespace) -> BackendOptions:
    """The run's cluster-backend flags (checked against --backend by the runner)."""
    from harness.backends.base import KUBE_PROXY_RELEASE, KUBERNETES_RELEASE, BackendOptions
    from harness.backends.registry import image_overrides

    release = getattr(args, "kubernetes_release", None)  # set by `compare --run`
    kube_proxy = getattr(args, "kube_proxy_release", None)  # `compare --run --parts kube-proxy`
    extra = {KUBERNETES_RELEASE: release} if release else {}
    if kube_proxy:
        extra[KUBE_PROXY_RELEASE] = kube_proxy
    return BackendOptions(
        keep_cluster=args.keep_cluster,
        allow_disruptive=args.allow_disruptive,
        kubeconfig=args.kubeconfig,
        loadgen_image=args.loadgen_image,
        capture_pcap=args.pcap,
        images=image_overrides(getattr(args, "image", None) or []),
        extra=extra,
    )


def cmd_run(args: argparse.Namespace) -> int:
    result, record = execute_run(args)
    if result["verdict"] == "inconclusive":
        raise Inconclusive(record.inconclusive())
    if result["verdict"] != "pass":
        raise ExpectationViolated(record.violated())
    return 0


def execute_run(args: argparse.Namespace) -> tuple[RunResult, RunRecord]:
    """One run as `run` does it (reports written); a violated expectation is in the result."""
    from harness import runner
    from harness.backendcheck import check_backend
    from harness.report import print_verdict_table
    from harness.report.files import default_report_dir, prepare_report_dir, salvage, write_run
    from harness.report.live import LiveRun, check_textfile
    from harness.results.record import RunRecord
    from harness.scenario.loader import read_scenario
    from harness.scenario.ownfiles import read_own_files
    from harness.wording import phases_text

    # bad input -> exit 2 before any host change; the file is read once, here
    scenario, text = read_scenario(args.scenario)
    options = backend_options(args)
    check_backend(args.backend, scenario, options)  # flags and refusals, then root
    runner.require_root(args.backend)
    record = RunRecord(
        scenario=scenario.name,
        run_id=runner.new_run_id(),
        backend=args.backend,
        command=shlex.join(["conntrack-harness", *sys.argv[1:]]),
        scenario_file=str(args.scenario),
        scenario_text=text,
        scenario_files=read_own_files(scenario, args.scenario),
    )
    given = Path(args.report_dir) if args.report_dir else None
    chosen = given or default_report_dir(scenario.name, record.run_id)
    created = not chosen.exists()  # removed again if the run measures nothing
    textfile = check_textfile(Path(args.metrics_textfile)) if args.metrics_textfile else None
    live = LiveRun(args.metrics_port)  # a port in use is bad input, refused here
    try:
        report_dir = prepare_report_dir(chosen)
        live.textfile = textfile or report_dir / "metrics.prom"
        print(
            f"conntrack-harness {__version__}: scenario {scenario.name} "
            f"({phases_text(len(scenario.phases))}) on {args.backend}; reports in {report_dir}",
            file=sys.stderr,
        )
        try:
            runner.run(
                record,
                scenario,
                force=args.force,
                wait_s=args.wait,
                progress=live.progress,
                on_phase=live.on_phase,
                options=options,
                notice=live.notice,
            )
        except BaseException:
            if salvage(record, report_dir) is None and created:
                _remove_if_empty(report_dir, default=given is None)  # nothing measured
            raise
    finally:
        live.close()
    result = record.result()
    print_verdict_table(result)
    paths = write_run(record, report_dir)
    print("reports: " + " ".join(str(p) for p in paths))
    return result, record


def _remove_if_empty(d: Path, *, default: bool) -> None:
    """Leave no empty report directory behind a run that measured nothing."""
    try:
        d.rmdir()
        if default:
            d.parent.rmdir()  # conntrack-harness-reports/, if this was its only run
    except OSError:
        pass


_port = in_range(int, 0, 65535, "a TCP port 0-65535")
_table_size = in_range(
    int,
    CONNTRACK_MAX_MIN,
    CONNTRACK_MAX_MAX,
    f"a table size {CONNTRACK_MAX_MIN}..{CONNTRACK_MAX_MAX}",
)


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


def cmd_compare(args: argparse.Namespace) -> int:
    """Two result.json of one scenario, or one scenario run on two Kubernetes releases: exit 1
    when a phase's verdict changed between them; else 6 when a phase is inconclusive in
    either (not measured in steady state: its verdict cannot be compared)."""
    from harness.results.diff import diff_runs, read_result, render

    if args.run is not None:
        if args.results:
            raise BadInput(
                "give either two RESULT_JSON files or --run SCENARIO, not both",
                field="--run",
                value=args.results,
            )
        a_path, b_path = _run_on_releases(args)
    else:
        if args.kubernetes:
            raise BadInput("--kubernetes only applies with --run SCENARIO", field="--kubernetes")
        if args.parts != "release":
            raise BadInput("--parts only applies with --run SCENARIO", field="--parts")
        if len(args.results) != 2:
            raise BadInput(
                "two result.json files are needed (or --run SCENARIO --kubernetes A B)",
                field="RESULT_JSON",
                value=args.results,
            )
        a_path, b_path = (Path(p) for p in args.results)
    diff = diff_runs(read_result(a_path, "RESULT_A"), read_result(b_path, "RESULT_B"))
    if args.json:
        print(
            json.dumps({**diff.to_json(), "a_file": str(a_path), "b_file": str(b_path)}, indent=2)
        )
    else:
        print(f"A: {a_path}\nB: {b_path}")
        print(render(diff))
    if diff.verdict_changed:
        raise ExpectationViolated(
            [
                f"the upgrade changed a verdict: {p.name}#{p.repeat_index} "
                f"{p.a.verdict} -> {p.b.verdict}"
                for p in diff.changed_phases()
            ]
        )
    if diff.inconclusive_phases():
        raise Inconclusive(
            [
                f"{p.name}#{p.repeat_index}: {p.a.verdict} -> {p.b.verdict} (a phase not "
                "measured in steady state in one run cannot show whether the upgrade changed "
                "its verdict; the result.json's steady_state.reason says why)"
                for p in diff.inconclusive_phases()
            ]
        )
    return 0


def _run_on_releases(args: argparse.Namespace) -> tuple[Path, Path]:
    """`compare --run`: the scenario once per Kubernetes release, each in its own report
    subdirectory (DIR/<release>/); returns the two result.json paths."""
    from harness.report.files import DEFAULT_REPORT_ROOT
    from harness.runner import new_run_id
    from harness.scenario.loader import read_scenario
    from harness.upstream import release

    if not args.kubernetes or len(args.kubernetes) != 2:
        raise BadInput("two Kubernetes releases are needed", field="--kubernetes")
    for v in args.kubernetes:
        try:
            release(v)
        except BadInput as e:
            raise BadInput(str(e).split(": ", 1)[-1], field="--kubernetes") from None
    if args.kubernetes[0] == args.kubernetes[1]:
        raise BadInput("the two releases are the same", field="--kubernetes", value=args.kubernetes)
    scenario, _ = read_scenario(args.run)  # bad input before anything runs
    base = (
        Path(args.report_dir)
        if args.report_dir
        else Path.cwd() / DEFAULT_REPORT_ROOT / f"compare-{scenario.name}-{new_run_id()}"
    )
    out = []
    for v in args.kubernetes:
        argv = ["run", str(args.run), "--report-dir", str(base / v), "--wait", str(args.wait)]
        run_args = build_parser().parse_args(argv)
        if args.parts == "kube-proxy":  # the scenario's release, this release's kube-proxy
            run_args.kube_proxy_release = v
            what = f"kube-proxy {v} (the rest: the scenario's release)"
        else:
            run_args.kubernetes_release = v
            what = f"Kubernetes {v}"
        print(f"conntrack-harness compare: {scenario.name} on {what}", file=sys.stderr)
        with contextlib.redirect_stdout(sys.stderr):  # stdout keeps only the comparison
            result, _ = execute_run(run_args)
        print(f"conntrack-harness compare: {v}: verdict {result['verdict']}", file=sys.stderr)
        out.append(base / v / "result.json")
    return out[0], out[1]


def _own_files(scenario_yaml: Path) -> dict[str, bytes]:
    """The files a kept scenario.yaml names, read next to it; none when it is missing or no
    longer valid (the reports are still written)."""
    from harness.scenario.loader import read_scenario
    from harness.scenario.ownfiles import read_own_files

    if not scenario_yaml.is_file():
        return {}
    try:
        return read_own_files(read_scenario(scenario_yaml)[0], scenario_yaml)
    except BadInput:
        return {}


def cmd_report(args: argparse.Namespace) -> int:
    from harness.report import print_verdict_table
    from harness.report.files import prepare_report_dir, write_reports
    from harness.results.evidence import Evidence

    result = _load_result(args.result)
    here = Path(args.result).parent
    out = prepare_report_dir(Path(args.out), field="--out") if args.out else here
    scen = here / "scenario.yaml"
    text = scen.read_text() if scen.is_file() else None
    print_verdict_table(result)
    evidence = Evidence.read(here / "evidence")
    paths = write_reports(
        result, out, evidence=evidence, scenario_text=text, scenario_files=_own_files(scen)
    )
    print("reports: " + " ".join(str(p) for p in paths))
    return 0


def cmd_diagnose(args: argparse.Namespace) -> int:
    from harness.diagnose.live import diagnose_live
    from harness.judge.diagnosis import diagnose_phase

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
    from harness.restore import check_conntrack_max_floor, restore_stale, set_conntrack_max
    from harness.runner import require_root

    require_root()
    if args.conntrack_max is not None:
        check_conntrack_max_floor(args.conntrack_max)  # refuse before anything is undone
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
    from harness.wording import phases_text

    for f in args.files:
        s = load_scenario(f)
        print(f"{f}: ok ({s.name}, {phases_text(len(s.phases))})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="conntrack-harness",
        description="Reproduce conntrack-caused DNS timeouts and prove which remediation works.",
    )
    ap.add_argument("--version", action="version", version=__version__)
    sub = ap.add_subparsers(dest="command", required=True)
    r = sub.add_parser(
        "run",
        help="run a scenario file (exit 0 pass, 1 violated, 2 bad input, 3 backend, "
        "4 restore failed, 5 internal error, 6 inconclusive: a phase with expectations was not "
        "measured in its load's steady state)",
    )
    r.add_argument("scenario", metavar="SCENARIO_FILE")
    r.add_argument("--backend", default="netns", help="netns (default), kind or kubeconfig")
    r.add_argument(
        "--report-dir",
        metavar="DIR",
        help="write result.json and the reports here. Default: "
        "./conntrack-harness-reports/<scenario>-<run id>/",
    )
    r.add_argument(
        "--force",
        action="store_true",
        help="allow shrinking nf_conntrack_max close to the host's live count",
    )
    add_wait(r)
    r.add_argument(
        "--pcap",
        action="store_true",
        help="netns and kind: tcpdump DNS in the client pods and put each phase's unanswered "
        "same-port A/AAAA pairs in the bug bundle (pcap/<phase>.pcap). Costs CPU. Default: off",
    )
    m = r.add_argument_group("metrics (Prometheus)")
    m.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="serve metrics on 127.0.0.1:PORT during the run (0: any free port). Default: off",
    )
    m.add_argument(
        "--metrics-textfile",
        metavar="FILE",
        help="node-exporter textfile, rewritten after each phase "
        "(default: REPORT_DIR/metrics.prom)",
    )
    k = r.add_argument_group("cluster backends (kind, kubeconfig; see docs/backends.md)")
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
        "then loads them instead of building loadgen/docker/). Default: build them",
    )
    k.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="ROLE=REF",
        help="kubeconfig backend: the image the nodes pull for ROLE (repeatable): http-server, "
        "node-cache, or node-cache-stand-in (a CoreDNS image run with node-cache's Corefile, "
        "labelled a stand-in). Default: the upstream images",
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
    add_wait(rs, "wait this long for a run's lock (default: refuse at once)")
    rs.add_argument(
        "--orphans",
        action="store_true",
        help="also delete cth- namespaces that no journal accounts for and no live run owns "
        "(left by a run whose journal was lost). Default: only name them",
    )
    rs.add_argument(
        "--conntrack-max",
        type=_table_size,
        metavar="ENTRIES",
        help="set net.netfilter.nf_conntrack_max to ENTRIES, for when no journal recorded its "
        "original (the kernel's default is nf_conntrack_buckets). Refused below the host's "
        "live entry count + 1024",
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
    c = sub.add_parser(
        "compare",
        help="the upgrade check: per phase, did the verdict change between two result.json "
        "files, or between two Kubernetes releases (--run)? Exit 0 none changed, 1 one changed, "
        "2 bad input, 6 none changed but a phase is inconclusive (not in steady state)",
    )
    c.add_argument("results", nargs="*", metavar="RESULT_JSON", help="A/result.json B/result.json")
    c.add_argument(
        "--run",
        metavar="SCENARIO_FILE",
        help="run this scenario on the netns backend once per --kubernetes release, then compare",
    )
    c.add_argument(
        "--kubernetes",
        nargs=2,
        metavar=("A", "B"),
        help="with --run: the two pinned releases (harness/upstream/versions.toml), A first",
    )
    c.add_argument(
        "--parts",
        choices=("release", "kube-proxy"),
        default="release",
        help="with --run: what each side takes from its release. release: the whole release "
        "(control plane, kube-proxy, CoreDNS); kube-proxy: kube-proxy alone, beside the "
        "scenario's release (default: versions.toml's default), so only kube-proxy is built "
        "for a release not in the cache; result.json labels a kube-proxy newer than its "
        "kube-apiserver as outside Kubernetes' version skew policy. Default: release",
    )
    c.add_argument(
        "--report-dir",
        metavar="DIR",
        help="with --run: each run's reports in DIR/<release>/. Default: "
        "./conntrack-harness-reports/compare-<scenario>-<run id>/",
    )
    add_wait(c, "with --run: wait this long for another run's lock (default: refuse at once)")
    c.add_argument("--json", action="store_true", help="print the comparison as JSON")
    c.set_defaults(func=cmd_compare)
    from harness.upcli import add_parsers as add_up  # up|down: a kept kind cluster

    add_up(sub)
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
    except (ExpectationViolated, Inconclusive) as e:
        print(f"conntrack-harness: {e}", file=sys.stderr)
        return e.exit_code
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
        _ignore_further_signals(argv)
        print("\nconntrack-harness: interrupted; host state restored", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print(
            f"conntrack-harness: internal error (exit {InternalError.exit_code}); "
            "the traceback above says where",
            file=sys.stderr,
        )
        return InternalError.exit_code
    except BaseException as e:
        from harness.runner import Interrupted

        if isinstance(e, Interrupted):
            _ignore_further_signals(argv)
            print(f"\nconntrack-harness: {e}; host state restored", file=sys.stderr)
            return 128 + e.signum  # the shell's convention: 143 SIGTERM, 129 SIGHUP
        raise


def _ignore_further_signals(argv: list[str] | None) -> None:
    """The program was interrupted and the host is restored: nothing is left to stop, so a
    second Ctrl-C (or TERM, HUP) while Python shuts down is ignored. Else it lands in a
    finalizer (seen: ``Popen.__del__``) and prints a traceback after the exit message. Only
    when ``main`` is the program (``argv`` None), not when it is called with arguments."""
    if argv is not None:
        return
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
