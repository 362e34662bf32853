"""Backends see only plans: no module under harness/backends imports the scenario language,
directly or through what it imports (issue 18, item 1). Read from the source's AST, every
import statement (a function's own, lazy imports too), never from the text."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import harness

pytestmark = pytest.mark.unit

ROOT = Path(harness.__file__).resolve().parent.parent  # where harness/, cthcommon/ are
BACKENDS = ROOT / "harness" / "backends"
FIRST_PARTY = ("harness", "cthcommon", "loadgen")
SCENARIO = "harness.scenario"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_file(name: str) -> Path | None:
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _parents(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def imported(path: Path, source: str | None = None) -> set[str]:
    """Every module ``path`` imports (``source``: its text, default read from it), with the
    packages Python imports on the way (a name ``from`` a package that is a submodule counts
    as that submodule)."""
    text = path.read_text() if source is None else source
    tree = ast.parse(text, filename=str(path))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.update(_parents(alias.name))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            out.update(_parents(base))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if module_file(sub) is not None:
                    out.add(sub)
    return out


def is_scenario(name: str) -> bool:
    return name == SCENARIO or name.startswith(SCENARIO + ".")


def backend_files() -> list[Path]:
    files = sorted(BACKENDS.rglob("*.py"))
    assert len(files) > 20, f"found only {len(files)} modules under {BACKENDS}"
    return files


def test_no_backend_module_imports_the_scenario() -> None:
    direct = {
        module_name(f): sorted(n for n in imported(f) if is_scenario(n)) for f in backend_files()
    }
    offenders = {m: names for m, names in direct.items() if names}
    assert offenders == {}, f"backends import the scenario language: {offenders}"


def test_nothing_a_backend_imports_imports_the_scenario() -> None:
    """The first-party import closure of harness/backends (lazy imports included) never
    reaches harness.scenario; the failure names the chain that does."""
    via: dict[str, str | None] = {}
    todo: list[str] = []
    for f in backend_files():
        name = module_name(f)
        via[name] = None
        todo.append(name)
    while todo:
        name = todo.pop()
        path = module_file(name)
        if path is None:
            continue
        for dep in imported(path):
            if dep.split(".")[0] in FIRST_PARTY and dep not in via:
                via[dep] = name
                todo.append(dep)
    reached = sorted(n for n in via if is_scenario(n))
    chains = []
    for n in reached:
        chain: list[str] = [n]
        while (prev := via[chain[-1]]) is not None:
            chain.append(prev)
        chains.append(" <- ".join(chain))
    assert "harness.plan.types" in via  # the walk follows the backends' real imports
    assert chains == [], "harness/backends reaches the scenario language:\n" + "\n".join(chains)


def test_the_walk_sees_a_scenario_import() -> None:
    """The check itself can fail: an import of the scenario, lazy or relative, is found."""
    where = BACKENDS / "kube" / "probe.py"  # parsed as if it were there; never written
    source = (
        "def f() -> None:\n"
        "    from harness.scenario.model import Scenario\n"
        "    from ...scenario import loader\n"
    )
    names = imported(where, source)
    assert {"harness.scenario", "harness.scenario.model", "harness.scenario.loader"} <= names
    assert not any(is_scenario(n) for n in imported(where, "from harness.plan import types\n"))
