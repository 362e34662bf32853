"""The layout shows the roles, and these boundaries keep it so (parsed with ast, not grep).

- ``loadgen`` is a leaf: nothing under it imports ``harness`` (what both need is in
  ``cthcommon``, which imports neither), and the loadgen image carries every package it
  imports.
- kind's image package (``harness/kindbuild``) builds images and runs Docker; it
  never imports the code that drives a cluster. Of ``harness.backends`` it may use only itself
  and the CLI seams ``commands`` (argv lists) and ``proc`` (the runner).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from harness.kindbuild import loadgenimage

ROOT = Path(__file__).resolve().parents[2]
IMAGES = "harness.kindbuild"
IMAGES_MAY_USE = {"harness.backends.kube.commands", "harness.backends.kube.proc"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module an import statement in ``source`` names, at any depth (function bodies and
    ``TYPE_CHECKING`` blocks too): ``from a.b import c`` names ``a.b`` and ``a.b.c`` (``c`` may
    be a submodule); relative imports are resolved against ``module``."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = module.split(".")
                keep = len(pkg) - node.level + (1 if is_package else 0)
                base = ".".join([*pkg[:keep], *([base] if base else [])])
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return out


def imports_of(package: str) -> dict[str, set[str]]:
    """module name -> what it imports, for every module file under ``package``."""
    files = sorted((ROOT / package.replace(".", "/")).rglob("*.py"))
    assert files, f"no modules under {package}"
    return {
        _module_name(f): imported(f.read_text(), _module_name(f), f.name == "__init__.py")
        for f in files
    }


def _under(name: str, top: str) -> bool:
    return name == top or name.startswith(top + ".")


def test_the_import_finder_sees_every_form() -> None:
    src = (
        "import harness.x\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from harness.y import Z\n"
        "def f():\n    from harness import w\n"
        "from .sib import q\n"
        "from .. import up\n"
    )
    got = imported(src, "loadgen.http.plan")
    assert {"harness.x", "harness.y", "harness.w", "loadgen.http.sib", "loadgen.up"} <= got
    assert "loadgen.dns.m" in imported("from .m import x", "loadgen.dns", is_package=True)


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [("loadgen", "harness"), ("cthcommon", "harness"), ("cthcommon", "loadgen")],
)
def test_a_leaf_imports_nothing_of(package: str, forbidden: str) -> None:
    found = imports_of(package)
    bad = {m: sorted(i for i in imps if _under(i, forbidden)) for m, imps in found.items()}
    assert not {m: b for m, b in bad.items() if b}, f"{package} must not import {forbidden}"


def test_loadgen_imports_its_shared_parts_from_cthcommon() -> None:
    """The scan does see loadgen's first-party imports (so the leaf test above can fail)."""
    found = imports_of("loadgen")
    assert any(_under(i, "cthcommon") for imps in found.values() for i in imps)


def outside_images(imps: set[str]) -> list[str]:
    """What of ``harness.backends`` an image module imports beyond what it may use."""
    return sorted(
        i
        for i in imps
        if _under(i, "harness.backends")
        and not _under(i, IMAGES)
        and not any(_under(i, ok) for ok in IMAGES_MAY_USE)
        and i not in ("harness.backends", "harness.backends.kube")  # a from-import's base
    )


def test_the_image_package_does_not_import_the_cluster_drivers() -> None:
    found = imports_of(IMAGES)
    assert len(found) >= 10
    assert not {m: bad for m, imps in found.items() if (bad := outside_images(imps))}
    # and the rule does catch a driver, however it is imported
    for src in (
        "from harness.backends.kube import cluster",
        "import harness.backends.kube.kind",
        "from ..backends.kube.runcluster import run",
        "from harness.backends.kube.commands import x\nfrom harness.backends import registry",
    ):
        assert outside_images(imported(src, f"{IMAGES}.x")), src


def _first_party(package: str) -> set[str]:
    """The project's top-level packages ``package`` imports (itself included)."""
    tops = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    return {i.split(".")[0] for imps in imports_of(package).values() for i in imps} & tops


def test_the_loadgen_image_carries_every_package_loadgen_imports() -> None:
    need = _first_party("loadgen")
    assert {"loadgen", "cthcommon"} <= need
    assert need <= set(loadgenimage.SOURCES)  # what the built image's digest covers
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"
    ]["find"]["include"]
    assert all(f"{p}*" in include for p in need)  # the wheel the image installs
    for dockerfile in ("Dockerfile.glibc", "Dockerfile.musl"):
        text = (ROOT / "loadgen/docker" / dockerfile).read_text()
        copied = set(re.findall(r"^COPY (\w+) \./\1$", text, re.M))
        assert need <= copied, dockerfile


def test_the_worker_runs_without_importing_harness() -> None:
    """In a fresh interpreter, as in a pod: the load worker's modules load no ``harness``."""
    code = (
        "import sys, loadgen.worker, loadgen.dns.engine, loadgen.http.workers, "
        "loadgen.dns.fastloop, loadgen.http.rawclient, loadgen.locust.launch\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'harness'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("name", ["LatencyMs", "LatencyHist", "HTTPResult"])
def test_result_json_uses_the_sections_the_worker_builds(name: str) -> None:
    """One definition of each section a worker builds: result.json's schema takes it from
    ``cthcommon.loadresult`` rather than keeping a copy that could drift."""
    from cthcommon import loadresult
    from harness.results import schema

    assert getattr(schema, name) is getattr(loadresult, name)


JUDGE_MAY_USE = ("harness.judge", "harness.results.schema", "cthcommon")


def outside_judge(imps: set[str]) -> list[str]:
    """What a judging module imports of the project beyond result.json's schema and itself."""
    return sorted(
        i
        for i in imps
        if _under(i, "harness") or _under(i, "loadgen")
        if not any(_under(i, ok) for ok in JUDGE_MAY_USE)
        and i not in ("harness", "harness.results")  # a from-import's base
    )


def test_the_judging_is_one_pure_layer_under_results_and_reports() -> None:
    """harness.judge reads result.json's typed phases and nothing else of the project: no
    backend, no kernel, no report, no results builder (which, with the reports, uses it)."""
    found = imports_of("harness.judge")
    assert len(found) >= 6
    assert not {m: bad for m, imps in found.items() if (bad := outside_judge(imps))}
    for src in (
        "from harness.report import html",
        "from harness.results.build import build_phase_result",
        "import harness.kernel.sysctl",
        "from ..backends.kube import cluster",
    ):
        assert outside_judge(imported(src, "harness.judge.x")), src
    # and the results builder no longer reaches up into the reports
    build = imports_of("harness.results")
    assert not any(_under(i, "harness.report") for imps in build.values() for i in imps)
