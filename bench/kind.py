"""``python -m bench.kind``: the kind figures of issue 14, measured, into ``bench/kind.json``.

- ``node_image_cold_build_s``: base image + node image from an image store that has neither
  (the debootstrap rootfs and the Go-built binaries come from the cache: their own cold
  times are the upstream bench's and ``debootstrap``'s);
- ``cluster_create_warm_s``: ``kind create cluster`` (1 control plane + 2 workers) with the node
  image present, until every node is Ready;
- ``cluster_delete_s``;
- ``scenario_run_s``: ``conntrack-harness run scenarios/exhaustion.yaml --backend kind`` as a
  user runs it, from the command to its exit (private dockerd, cluster, 4 phases, deletion),
  with the node image present; ``scenario_run_steady``: whether every phase with expectations
  was measured in its steady state;
- ``warmup_s``: the aged warm-up's duration per phase that had one (result.json
  ``steady_state.warmup.duration_s``), on kind and, from the same scenario run on netns, on
  netns (issue 18: kind's takes no longer than netns's).

- ``kept``: the same scenario on a kept cluster (``--kept``): a Docker daemon that answers
  (this project's dockerd, started as "the user's") with the pinned node image, the first
  run creating the cluster (``CTH_KIND_KEEP=1``) and the second reusing it, beside a netns
  run; each run's progress lines stamped with their second from the command's start, so the
  time a phase and the set-up take on each backend can be read side by side
  (issue 18: the kept-cluster run within 1.5x of netns's).

Root; takes the host lock (as the harness does); ~10 min on the 2-core machine.
``--scenario-only``: only the two scenario runs, merged into the existing kind.json;
``--kept``: only the kept-cluster runs, merged the same way.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.kindkept import kept_kind_env
from bench.matrix import LOCK_WAIT_S
from harness.kernel.journal import HostLock, Journal
from harness.kindbuild import dockerd, kindbase, kindnode
from harness.upstream import kindparts, locate

OUT = Path(__file__).resolve().parent / "kind.json"
CONFIG = """kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
- role: control-plane
- role: worker
- role: worker
kubeadmConfigPatches:
- |
  kind: KubeletConfiguration
  failCgroupV1: false
- |
  kind: KubeProxyConfiguration
  conntrack:
    maxPerCore: 0
"""


def _ready(kubectl: Path, kubeconfig: Path, nodes: int) -> bool:
    p = subprocess.run(
        [str(kubectl), "--kubeconfig", str(kubeconfig), "get", "nodes", "--no-headers"],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = p.stdout.strip().splitlines()
    return len(lines) == nodes and all(ln.split()[1] == "Ready" for ln in lines)


def _run(
    backend: str, env: dict[str, str] | None = None, stamped: list[str] | None = None
) -> tuple[float, int, dict[str, Any] | None]:
    """exhaustion.yaml on ``backend`` as a user runs it: (seconds, exit, result.json). With
    ``stamped``, each progress line goes there with its second from the command's start."""
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as td:
        argv = [sys.executable, "-m", "harness.cli", "run", str(root / "scenarios/exhaustion.yaml")]
        argv += ["--backend", backend, "--report-dir", td, "--wait", "1800"]
        t0 = time.monotonic()
        with subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=td, env=env
        ) as p:
            assert p.stderr is not None
            for line in p.stderr:
                if stamped is not None:
                    stamped.append(f"{time.monotonic() - t0:7.1f} {line.rstrip()}")
            code = p.wait(timeout=1800)
        took = round(time.monotonic() - t0, 1)
        path = Path(td) / "result.json"
        result = json.loads(path.read_text()) if path.exists() else None
    return took, code, result


def warmups(result: dict[str, Any] | None) -> dict[str, float]:
    """phase -> the aged warm-up's seconds, for the phases that had one."""
    out = {}
    for ph in (result or {}).get("phases", []):
        w = ph.get("steady_state", {}).get("warmup", {})
        if w.get("method") == "aged-fill":
            out[ph["name"]] = float(w["duration_s"])
    return out


def all_steady(result: dict[str, Any] | None) -> bool | None:
    if result is None:
        return None
    return all(
        ph.get("steady_state", {}).get("reached") is True
        for ph in result.get("phases", [])
        if ph.get("expectations")
    )


def scenario_run() -> dict[str, object]:
    """The whole kind scenario run, timed as a user sees it; the warm-ups on kind and netns."""
    took, code, result = _run("kind")
    netns_took, _, netns = _run("netns")
    return {
        "scenario_run_s": took,
        "scenario_run_exit": code,
        "scenario_run_verdict": result["verdict"] if result else None,
        "scenario_run_steady": all_steady(result),
        "warmup_s": {"kind": warmups(result), "netns": warmups(netns)},
        "netns_scenario_run_s": netns_took,
    }


KEPT = "cthbench-kept"


PAIRS = 3  # kept-cluster and netns runs in turn, after the creating run


def kept_runs(pairs: int = PAIRS) -> dict[str, object]:
    """exhaustion.yaml on a kind cluster the first run creates and keeps and the next ones
    reuse, on a Docker daemon that answers with the pinned node image (this project's
    dockerd as "the user's"), in turn with netns runs (``pairs`` of them, the ratio taken
    pair by pair: the machine's speed drifts, and a netns run's baseline waits out its
    lookups in flight, 5-13 s): each run's wall seconds, and the last pair's stamped lines."""
    logs: dict[str, list[str]] = {"created": [], "kept": [], "netns": []}
    out: dict[str, object] = {}
    lock = HostLock(LOCK_WAIT_S)  # held throughout: no run's time includes a wait for it
    lock.acquire()
    journal = Journal.create("benchkept")
    state = tempfile.TemporaryDirectory()
    kept: list[float] = []
    netns: list[float] = []
    codes: list[int] = []
    steady: list[bool | None] = []
    try:
        own_lock = {"CONNTRACK_HARNESS_LOCK": str(Path(state.name) / "run.lock")}
        with kept_kind_env(journal, KEPT, Path(state.name)) as kept_env:
            env = kept_env.env
            created, c_code, _ = _run("kind", env, logs["created"])
            for _ in range(pairs):
                logs["kept"], logs["netns"] = [], []
                took, code, result = _run("kind", env, logs["kept"])
                kept.append(took)
                codes.append(code)
                steady.append(all_steady(result))
                netns.append(_run("netns", os.environ | own_lock, logs["netns"])[0])
    finally:
        journal.close()
        state.cleanup()
        lock.release()
    ratios = [round(k / n, 2) for k, n in zip(kept, netns, strict=True)]
    out["kept"] = {
        "created_run_s": created,
        "created_exit": c_code,
        "kept_runs_s": kept,
        "kept_exits": codes,
        "kept_steady": all(steady),
        "netns_runs_s": netns,
        "ratios": ratios,
        "kept_run_s": statistics.median(kept),
        "netns_run_s": statistics.median(netns),
        "kept_vs_netns": statistics.median(ratios),
        "target": "kept_vs_netns <= 1.5 (the median of the pairs' ratios)",
        "lines": logs,
    }
    return out


def main(argv: list[str]) -> int:
    if argv in (["--scenario-only"], ["--kept"]):
        kept: dict[str, object] = json.loads(OUT.read_text()) if OUT.exists() else {}
        kept.update(scenario_run() if argv == ["--scenario-only"] else kept_runs())
        OUT.write_text(json.dumps(kept, indent=2) + "\n")
        print(json.dumps(kept, indent=2))
        return 0
    kind = kindparts.kind_binary()
    kubectl = locate("kubectl")
    out: dict[str, object] = {}
    lock = HostLock(LOCK_WAIT_S)  # the scenario run below takes it itself
    lock.acquire()
    journal = Journal.create("benchkind")
    try:
        with dockerd.running(journal) as d, tempfile.TemporaryDirectory() as td:
            for repo in (kindnode.NODE_REPO, kindbase.BASE_REPO):  # children first
                for image in set(d.cli("images", "-q", repo).split()):
                    d.cli("rmi", "-f", image)
            notes: list[str] = []
            t0 = time.monotonic()
            image = kindnode.build(d, log=notes)
            out["node_image_cold_build_s"] = round(time.monotonic() - t0, 1)
            out["node_image"] = image
            out["node_image_steps"] = notes
            cfg, kc = Path(td) / "kind.yaml", Path(td) / "kubeconfig"
            cfg.write_text(CONFIG)
            t0 = time.monotonic()
            create = [str(kind), "create", "cluster", "--name", "cthbench", "--image", image]
            create += ["--config", str(cfg), "--kubeconfig", str(kc)]
            try:
                subprocess.run(create, check=True, capture_output=True, text=True, timeout=600)
                deadline = time.monotonic() + 300
                while not _ready(kubectl, kc, 3):
                    if time.monotonic() > deadline:
                        raise TimeoutError("nodes not Ready after 300 s")
                    time.sleep(1)
                out["cluster_create_warm_s"] = round(time.monotonic() - t0, 1)
            finally:
                t1 = time.monotonic()
                subprocess.run(
                    [str(kind), "delete", "cluster", "--name", "cthbench", "--kubeconfig", str(kc)],
                    check=False,
                    capture_output=True,
                    timeout=300,
                )
                out["cluster_delete_s"] = round(time.monotonic() - t1, 1)
    finally:
        journal.close()
        lock.release()
    out.update(scenario_run())
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
