"""The test tiers are the folders: the root conftest maps a test file to its tier by path."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _conftest() -> ModuleType:
    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    assert spec is not None
    assert spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize(
    ("rel", "tier"),
    [
        ("tests/unit/test_cli.py", "unit"),
        ("tests/kernel/test_interrupt.py", "kernel"),
        ("scenarios/test_race.py", "kernel"),
        ("tests/cluster/test_kind_node.py", "cluster"),
        ("tests/sample_results.py", None),
        ("tests/unitx/test_a.py", None),
    ],
)
def test_tier_follows_the_folder(rel: str, tier: str | None) -> None:
    assert _conftest().tier_of(ROOT / rel) == tier


def test_every_test_file_is_in_a_tier_folder() -> None:
    conftest = _conftest()
    files = [
        *ROOT.joinpath("tests").rglob("test_*.py"),
        *ROOT.joinpath("scenarios").rglob("test_*.py"),
    ]
    assert files
    assert [f for f in files if conftest.tier_of(f) is None] == []
