"""Fixtures for the kube backend tests (the fakes live in kube_fakes.py)."""

from __future__ import annotations

import pytest
from kube_fakes import scenario

from harness.scenario.model import Scenario


@pytest.fixture
def scn() -> Scenario:
    return scenario()
