"""Repo-wide pytest configuration: the test tiers are the folders.

Every test gets the marker of the folder it sits in (``tests/unit`` -> ``unit``, ``tests/kernel``
and the shipped scenarios' own tests in ``scenarios/`` -> ``kernel``, ``tests/cluster`` ->
``cluster``), so ``-m unit|kernel|cluster`` selects exactly one folder's tests. A test that
carries another tier's marker is a collection error: a test cannot sit in one folder and be
selected by another tier's flag. Kernel tests need root and skip with the reason otherwise.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parent

# folder (relative to the repository) -> its tier's marker
TIER_DIRS: dict[str, str] = {
    "tests/unit": "unit",
    "tests/kernel": "kernel",
    "scenarios": "kernel",
    "tests/cluster": "cluster",
}
TIERS = frozenset(TIER_DIRS.values())


def tier_of(path: Path) -> str | None:
    """The tier of a test file, by the folder it sits in; None outside every tier folder."""
    for folder, tier in TIER_DIRS.items():
        if path.is_relative_to(ROOT / folder):
            return tier
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    not_root = os.geteuid() != 0
    wrong: list[str] = []
    for item in items:
        path = Path(str(item.fspath))
        tier = tier_of(path)
        if tier is None:
            folders = ", ".join(TIER_DIRS)
            wrong.append(f"{item.nodeid}: not in a tier folder ({folders})")
            continue
        others = sorted({m.name for m in item.iter_markers() if m.name in TIERS} - {tier})
        if others:
            wrong.append(
                f"{item.nodeid}: marked {', '.join(others)} but its folder is the {tier} tier "
                "(the tier markers follow the folders; move the test or drop the marker)"
            )
            continue
        item.add_marker(getattr(pytest.mark, tier))
        if not_root and (tier == "kernel" or item.get_closest_marker("scenario")):
            item.add_marker(pytest.mark.skip(reason="needs root: builds namespaces and sysctls"))
    if wrong:
        raise pytest.UsageError("test tiers:\n  " + "\n  ".join(wrong))


# per tier: seconds in its tests' set-up, call and teardown; tests run (or skipped)
_TIER_SECONDS: Counter[str] = Counter()
_TIER_TESTS: Counter[str] = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    tier = tier_of(ROOT / report.nodeid.split("::")[0]) or "other"
    _TIER_SECONDS[tier] += report.duration
    if report.when == "call" or (report.when == "setup" and report.skipped):
        _TIER_TESTS[tier] += 1


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The suite's time per tier (the three folders), for CI logs and the closing notes:
    a session-scoped fixture's set-up counts in the tier of the first test that needed it."""
    if _TIER_SECONDS:
        parts = [
            f"{t} {s:.0f} s ({_TIER_TESTS[t]} tests)" for t, s in sorted(_TIER_SECONDS.items())
        ]
        terminalreporter.write_line("time per tier: " + ", ".join(parts))


# what the shipped_result fixture returns: scenario file (relative to the repository) -> result
ShippedResult = Callable[[str], dict[str, Any]]


@pytest.fixture(scope="session")
def shipped_result(tmp_path_factory: pytest.TempPathFactory) -> ShippedResult:
    """``shipped_result("scenarios/exhaustion.yaml")``: the result.json of that file, as
    shipped, run once per pytest session on the netns backend (the real parts, the host lock)
    and shared by every test that reads it: the scenario's own test, the kube-proxy modes
    test (iptables is the files' mode) and the kind equivalence test's netns side. A test
    that changes the file (overrides, fewer phases) runs its own. Each caller gets a copy."""
    import copy

    from harness.runner import run_scenario
    from harness.scenario.loader import load_scenario

    cache: dict[str, dict[str, Any]] = {}

    def get(path: str) -> dict[str, Any]:
        if path not in cache:
            report = tmp_path_factory.mktemp(Path(path).stem + "-shipped")
            cache[path] = dict(
                run_scenario(
                    load_scenario(ROOT / path),
                    scenario_file=path,
                    backend="netns",
                    report_dir=report,
                    wait_s=3600,
                    command=f"pytest (shipped_result {path})",
                )
            )
        return copy.deepcopy(cache[path])

    return get
