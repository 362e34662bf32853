"""environ_set: the variables for the block, then each back as it was (unset included)."""

from __future__ import annotations

import os

import pytest

from harness.backends.kube.proc import environ_set

pytestmark = pytest.mark.unit


def test_set_for_the_block_then_put_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CTH_T_SET", "before")
    monkeypatch.delenv("CTH_T_UNSET", raising=False)
    with pytest.raises(RuntimeError), environ_set({"CTH_T_SET": "in", "CTH_T_UNSET": "in"}):
        assert os.environ["CTH_T_SET"] == os.environ["CTH_T_UNSET"] == "in"
        raise RuntimeError("the block fails")
    assert os.environ["CTH_T_SET"] == "before"
    assert "CTH_T_UNSET" not in os.environ
