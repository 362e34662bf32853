"""Repo-wide pytest configuration: tests under tests/unit are marked `unit`; kernel tests need
root and skip with the reason otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unit_dir = ROOT / "tests" / "unit"
    not_root = os.geteuid() != 0
    for item in items:
        if Path(str(item.fspath)).is_relative_to(unit_dir):
            item.add_marker(pytest.mark.unit)
        if not_root and (item.get_closest_marker("kernel") or item.get_closest_marker("scenario")):
            item.add_marker(pytest.mark.skip(reason="needs root: builds namespaces and sysctls"))
