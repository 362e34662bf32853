"""Every unit test gets a state directory of its own: nothing the host's runs recorded (their
journals, the cluster `conntrack-harness up` keeps) changes what a unit test sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.kernel.journal import STATE_DIR_ENV


@pytest.fixture(autouse=True)
def _own_state_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    d = tmp_path_factory.mktemp("state")
    monkeypatch.setenv(STATE_DIR_ENV, str(d))
    return d
