"""Build a component from source through the Go module proxy: write the wrapper module that
:mod:`harness.upstream.recipes` describes, ``go mod tidy``, then ``go build`` each binary.

Builds run under ``nice -n 19`` with ``CGO_ENABLED=0`` (static binaries), ``-trimpath`` (no
build paths in the binary) and ``GOTOOLCHAIN=local`` (never fetch another Go). A module the
proxy refuses is named exactly (:class:`~harness.upstream.errors.ModuleRefused`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cthcommon.errors import MissingTool
from harness.upstream import recipes
from harness.upstream.errors import BuildFailed, refusal

Progress = Callable[[str], None]
HEARTBEAT_S = 60.0


@dataclass(frozen=True)
class Built:
    """One binary out of ``go build``."""

    path: Path
    seconds: float
    origin: str  # "go build PACKAGE (MODULE@VERSION, goX.Y.Z)"


def go_binary() -> str:
    found = shutil.which("go") or (
        "/usr/local/go/bin/go" if os.access("/usr/local/go/bin/go", os.X_OK) else None
    )
    if not found:
        raise MissingTool(
            "the Go toolchain is needed to build the upstream components: install Go "
            "(https://go.dev/dl) or use `--source download`"
        )
    return found


def go_env(gocache: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(CGO_ENABLED="0", GOTOOLCHAIN="local", GOWORK="off", GOFLAGS="-mod=mod")
    if gocache is not None:
        env["GOCACHE"] = str(gocache)
    return env


def go_version(env: Mapping[str, str]) -> str:
    out = subprocess.run(
        [go_binary(), "env", "GOVERSION"],
        check=False,
        env=dict(env),
        capture_output=True,
        text=True,
    )
    return out.stdout.strip() or "go (unknown version)"


def run_go(
    args: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    component: str,
    progress: Progress | None = None,
    what: str = "",
) -> str:
    """Run ``go ARGS`` niced; say every minute that it is still running; its stdout."""
    argv = ["nice", "-n", "19", go_binary(), *args]
    t0 = time.monotonic()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, cwd=cwd, env=dict(env), stdout=out, stderr=err)
        try:
            while True:
                try:
                    proc.wait(timeout=HEARTBEAT_S)
                    break
                except subprocess.TimeoutExpired:
                    if progress:
                        progress(f"  ... {what or args[0]}: {time.monotonic() - t0:.0f} s")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        refused = refusal(component, stderr + stdout)
        if refused is not None:
            raise refused
        raise BuildFailed(
            f"{component}: go {' '.join(args[:2])} failed ({proc.returncode}): "
            f"{stderr.strip()[-1500:]}",
            argv=argv,
        )
    return stdout


def fetch_module(
    module: str, query: str, *, cwd: Path, env: Mapping[str, str], component: str
) -> tuple[str, str]:
    """Download ``module@query`` through the proxy: (its resolved version, its go.mod)."""
    args = ["mod", "download", "-json", f"{module}@{query}"]
    argv = [go_binary(), *args]
    proc = subprocess.run(argv, check=False, cwd=cwd, env=dict(env), capture_output=True, text=True)
    try:
        info = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except json.JSONDecodeError:
        info = {}
    problem = str(info.get("Error") or "") or (proc.stderr if proc.returncode else "")
    if problem:
        refused = refusal(component, problem)
        if refused is not None:
            raise refused
        raise BuildFailed(f"{component}: go mod download {module}@{query}: {problem.strip()}")
    return str(info["Version"]), Path(info["GoMod"]).read_text()


def module_dir(module: str, version: str, *, timeout_s: float = 1800) -> Path:
    """``module@version``'s source directory in the Go module cache, downloaded through the
    proxy when missing (the kind backend builds from kind's and Kubernetes' own trees)."""
    proc = subprocess.run(
        [go_binary(), "mod", "download", "-json", f"{module}@{version}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout_s,
        cwd="/",
    )
    try:
        info = json.loads(proc.stdout) if proc.stdout.strip() else {}
    except json.JSONDecodeError:
        info = {}
    if proc.returncode != 0 or "Dir" not in info:
        problem = str(info.get("Error") or "") or proc.stderr or proc.stdout
        raise BuildFailed(f"go mod download {module}@{version}: {problem.strip()}")
    return Path(info["Dir"])


def build(
    recipe: recipes.Recipe,
    binaries: tuple[str, ...],
    out_dir: Path,
    *,
    env: Mapping[str, str],
    progress: Progress,
) -> dict[str, Built]:
    """Build ``binaries`` of ``recipe`` into ``out_dir``."""
    work = Path(tempfile.mkdtemp(prefix=f"cth-build-{recipe.component}-"))
    try:
        (work / "go.mod").write_text(recipe.go_mod)
        (work / "tools.go").write_text(recipe.tools_go(binaries))
        t0 = time.monotonic()
        run_go(
            ["mod", "tidy"],
            cwd=work,
            env=env,
            component=recipe.component,
            progress=progress,
            what="go mod tidy",
        )
        progress(f"  modules resolved in {time.monotonic() - t0:.1f} s")
        gover = go_version(env)
        out: dict[str, Built] = {}
        for b in binaries:
            progress(f"  building {b} ({recipe.packages[b]})")
            t1 = time.monotonic()
            run_go(
                [
                    "build",
                    "-trimpath",
                    "-ldflags",
                    recipe.ldflags.get(b, "-s -w"),
                    "-o",
                    str(out_dir / b),
                    recipe.packages[b],
                ],
                cwd=work,
                env=env,
                component=recipe.component,
                progress=progress,
                what=f"go build {b}",
            )
            took = time.monotonic() - t1
            out[b] = Built(
                out_dir / b,
                took,
                f"go build {recipe.packages[b]} ({recipe.module}@{recipe.module_version}, {gover})",
            )
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)
