"""The bug-report bundle: one tar.gz that someone else can read and run again.

Layout (under ``conntrack-harness-<run_id>/``)::

    README.md                 what is inside, the verdict, how to re-run
    rerun.sh                  re-runs the scenario kept here, with the run's options
    scenario.yaml             the scenario file
    <its own files>           the Corefile and locustfiles it names, at the paths it gives
                              (scenario-files/<name> for one outside its directory)
    result.json
    environment/kernel.txt, sysctls.txt, tools.txt
    nodes/<node>/iptables-save.txt, conntrack-S.txt      at the end of the run
    pods/<pod>/resolv.conf
    phases/<phase>/nodes/<node>/conntrack-S.txt          each phase, with its remediations
    phases/<phase>/pods/<pod>/resolv.conf
    logs/table-full.log       the kernel's "table full" lines
    pcap/<name>.pcap          optional: unanswered same-port pairs

The caller gathers the per-node and per-pod texts (they need the live namespaces); each may be
given as text (``str``), as bytes, or as a file to copy (``Path``). The archive is
deterministic: sorted members, fixed owner and mtime.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import shlex
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cthcommon.errors import BadInput
from harness.results.schema import RunResult
from harness.scenario.ownfiles import OUTSIDE

Source = str | bytes | Path
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class NodeEnv:
    """What was captured on one node."""

    iptables_save: Source | None = None
    conntrack_stats: Source | None = None  # `conntrack -S`
    extra: Mapping[str, Source] = field(default_factory=dict)  # file name -> content


def _text(src: Source) -> bytes:
    if isinstance(src, Path):
        if not src.is_file():
            raise BadInput("bundle input file not found", field="bundle", value=str(src))
        return src.read_bytes()
    return src if isinstance(src, bytes) else src.encode()


def _safe(name: str, what: str) -> str:
    if not _SAFE.match(name):
        raise BadInput(
            f"{what} name is not safe as a file name", field=what, value=name, allowed=_SAFE.pattern
        )
    return name


def _mtime(result: RunResult) -> int:
    try:
        return int(datetime.fromisoformat(result["finished_at"].replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0


def _readme(result: RunResult, members: list[str]) -> str:
    env = result["environment"]
    phases = "\n".join(
        f"- {p['name']}{' [INJECTED]' if p['injected'] else ''}: {p['dns']['timeouts']}/"
        f"{p['dns']['lookups']} lookups timed out, conntrack drop={p['conntrack']['drop']} "
        f"-> {p['verdict']}"
        for p in result["phases"]
    )
    files = "\n".join(f"- `{m}`" for m in members)
    away = [m for m in members if m.startswith(f"{OUTSIDE}/")]
    outside = (
        "The scenario names these files by a path outside its own directory; put them back "
        "where `scenario.yaml` says before re-running: "
        + ", ".join(f"`{m}`" for m in away)
        + ".\n\n"
        if away
        else ""
    )
    return (
        f"# conntrack-harness bug report: {result['scenario']}\n\n"
        f"Verdict: **{result['verdict']}** (run `{result['run_id']}`, kernel "
        f"`{env['kernel']}`, backend `{env['backend']}`).\n\n{phases}\n\n"
        f"## Re-run\n\nThe run was: `{result['command']}`\n\n`sh rerun.sh` (as root) runs "
        "the `scenario.yaml` kept here with the same options; it finds `conntrack-harness` "
        "on PATH or in `.venv/bin/` of the directory you run it from.\n\n"
        f"{outside}## Files\n\n{files}\n"
    )


# Options of `conntrack-harness run` that take a value, and those the bundle's rerun replaces.
_RUN_VALUE_OPTIONS = frozenset(
    {"--backend", "--report-dir", "--wait", "--metrics-port", "--metrics-textfile", "--kubeconfig"}
)
_RUN_DROPPED = frozenset({"--report-dir", "--metrics-textfile", "--metrics-port"})


def rerun_args(result: RunResult) -> list[str]:
    """The recorded ``run``'s options, without the scenario path and the output paths (the
    rerun uses the bundle's scenario and writes next to it). A command that was not
    ``conntrack-harness run`` (a pytest session) gives just its backend."""
    try:
        argv = shlex.split(result["command"])
    except ValueError:
        argv = []
    if "run" not in argv:
        return ["--backend", result["environment"]["backend"]]
    args = argv[argv.index("run") + 1 :]
    out: list[str] = []
    i, scenario_seen = 0, False
    while i < len(args):
        a = args[i]
        name = a.split("=", 1)[0]
        takes_value = name in _RUN_VALUE_OPTIONS and "=" not in a
        if a.startswith("-"):
            if name not in _RUN_DROPPED:
                out += args[i : i + 1 + takes_value]
            i += 1 + takes_value
            continue
        if not scenario_seen:  # the positional SCENARIO_FILE
            scenario_seen = True
        else:
            out.append(a)
        i += 1
    return out


def rerun_script(result: RunResult) -> str:
    """A POSIX sh script that finds the CLI and runs the bundle's own scenario.yaml."""
    args = "".join(f"{shlex.quote(a)} " for a in rerun_args(result))
    return f"""#!/bin/sh
# Re-run {result["scenario"]} (run {result["run_id"]}) with the scenario kept in this bundle.
# Originally: {result["command"]}
# Needs root (e.g. `sudo sh rerun.sh`). Reports go to rerun-report/ next to this script.
set -e
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "$CONNTRACK_HARNESS" ]; then
    cli=$CONNTRACK_HARNESS
elif command -v conntrack-harness >/dev/null 2>&1; then
    cli=conntrack-harness
elif [ -x .venv/bin/conntrack-harness ]; then
    cli=.venv/bin/conntrack-harness
else
    echo "rerun.sh: conntrack-harness not found (not on PATH, no .venv/bin/conntrack-harness" >&2
    echo "here). Install it: in a conntrack-harness checkout run scripts/bootstrap.sh, then run" >&2
    echo "this script from that checkout, or set CONNTRACK_HARNESS=/path/to/conntrack-harness." >&2
    exit 127
fi
exec "$cli" run "$here/scenario.yaml" {args}--report-dir "$here/rerun-report"
"""


def evidence_files(evidence_dir: Path) -> dict[str, Path]:
    """A run's evidence directory as bundle members: node directories go under ``nodes/``;
    ``nodes/``, ``pods/``, ``phases/`` and ``pcap/`` keep their layout."""
    out: dict[str, Path] = {}
    if not evidence_dir.is_dir():
        return out
    for f in sorted(evidence_dir.rglob("*")):
        if not f.is_file():
            continue
        parts = f.relative_to(evidence_dir).parts
        if parts[0] not in ("nodes", "pods", "phases", "pcap"):
            parts = ("nodes", *parts)
        out["/".join(_safe(p, "evidence") for p in parts)] = f
    return out


def write_bundle(
    result: RunResult,
    out_path: str | Path,
    *,
    scenario: Source,
    nodes: Mapping[str, NodeEnv] | None = None,
    pod_resolv_conf: Mapping[str, Source] | None = None,
    table_full_log: Source | None = None,
    pcaps: Mapping[str, Source] | None = None,
    kernel: str | None = None,
    evidence: Mapping[str, Source] | None = None,
    scenario_files: Mapping[str, Source] | None = None,
) -> Path:
    """Write the bundle to ``out_path`` (``.tar.gz``) and return it.

    ``scenario`` is the scenario file (``Path``) or its text; ``scenario_files`` the files it
    names, by their path relative to it (``harness.scenario.ownfiles``). ``table_full_log``
    defaults to the lines result.json carries. ``kernel`` (e.g. ``uname -a``) defaults to the
    recorded one.
    """
    out = Path(out_path)
    if not out.name.endswith(".tar.gz"):
        raise BadInput("the bundle is a .tar.gz", field="out_path", value=str(out))
    files: dict[str, bytes] = {
        "scenario.yaml": _text(scenario),
        "result.json": (json.dumps(result, indent=2, sort_keys=True) + "\n").encode(),
        "rerun.sh": rerun_script(result).encode(),
    }
    for rel, src in (scenario_files or {}).items():
        files["/".join(_safe(p, "scenario file") for p in rel.split("/"))] = _text(src)
    env = result["environment"]
    files["environment/kernel.txt"] = ((kernel or env["kernel"]).rstrip() + "\n").encode()
    files["environment/sysctls.txt"] = "".join(
        f"{k} = {v}\n" for k, v in sorted(env["sysctls"].items())
    ).encode()
    files["environment/tools.txt"] = "".join(
        f"{k}: {v}\n"
        for k, v in sorted(
            {**env["tools"], "python": env["python"], "backend": env["backend"]}.items()
        )
    ).encode()
    for node, captured in (nodes or {}).items():
        base = f"nodes/{_safe(node, 'node')}"
        if captured.iptables_save is not None:
            files[f"{base}/iptables-save.txt"] = _text(captured.iptables_save)
        if captured.conntrack_stats is not None:
            files[f"{base}/conntrack-S.txt"] = _text(captured.conntrack_stats)
        for name, src in captured.extra.items():
            files[f"{base}/{_safe(name, 'node file')}"] = _text(src)
    for pod, src in (pod_resolv_conf or {}).items():
        files[f"pods/{_safe(pod, 'pod')}/resolv.conf"] = _text(src)
    if table_full_log is None:
        lines = [ln for p in result["phases"] for ln in p["conntrack"]["table_full_log"]]
        files["logs/table-full.log"] = "".join(f"{ln}\n" for ln in lines).encode()
    else:
        files["logs/table-full.log"] = _text(table_full_log)
    for name, pcap in (pcaps or {}).items():
        files[f"pcap/{_safe(name, 'pcap')}.pcap"] = _text(pcap)
    for rel, src in (evidence or {}).items():  # the run's evidence directory, by path
        files["/".join(_safe(p, "evidence") for p in rel.split("/"))] = _text(src)
    files["README.md"] = _readme(result, sorted(files)).encode()

    root = f"conntrack-harness-{_safe(result['run_id'], 'run_id')}"
    mtime = _mtime(result)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".partial")
    with (
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=mtime) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in sorted(files):
            data = files[name]
            info = tarfile.TarInfo(f"{root}/{name}")
            info.size = len(data)
            info.mtime = mtime
            info.mode = 0o755 if name.endswith(".sh") else 0o644
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    tmp.replace(out)
    return out


def rerun_command(argv: list[str]) -> str:
    """Quote an argv as the one-line command a bundle records."""
    return shlex.join(argv)
