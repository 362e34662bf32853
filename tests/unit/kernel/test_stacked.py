"""The shared lifecycle: a start that fails halfway undoes what it did, in reverse."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from harness.kernel.stacked import Stacked


class Built(Stacked):
    def __init__(self, fail_at: int | None) -> None:
        self._stack = ExitStack()
        self.fail_at = fail_at
        self.log: list[str] = []

    def _start(self) -> None:
        for i in range(3):
            if i == self.fail_at:
                raise RuntimeError(f"step {i} failed")
            self.log.append(f"do {i}")
            self._stack.callback(self.log.append, f"undo {i}")


def test_a_failed_start_undoes_its_steps_in_reverse_and_raises() -> None:
    b = Built(fail_at=2)
    with pytest.raises(RuntimeError, match="step 2 failed"), b:
        pass
    assert b.log == ["do 0", "do 1", "undo 1", "undo 0"]


def test_leaving_the_block_undoes_everything_once() -> None:
    with Built(fail_at=None) as b:
        assert b.log == ["do 0", "do 1", "do 2"]
    b.close()  # idempotent
    assert b.log[3:] == ["undo 2", "undo 1", "undo 0"]
