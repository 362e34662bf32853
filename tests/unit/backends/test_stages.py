"""Setup/teardown progress lines (harness.backends.stages): what is said, when, and that a
listener never costs the run."""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from cthcommon.errors import BackendError, RestoreFailed
from harness.backends.stages import Stages


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def stages() -> tuple[Stages, list[str], Clock]:
    lines: list[str] = []
    clock = Clock()
    return Stages(lines.append, "kind", clock=clock), lines, clock


def test_a_stage_says_when_it_starts_and_how_long_it_took() -> None:
    st, lines, clock = stages()
    with st.stage("kind create cluster cth-r1 (3 nodes)"):
        clock.now += 61.25
    with st.stage("node image") as s:
        clock.now += 2
        s.result = "conntrack-harness/kind-node:v1.35.4-abc already built"
    assert lines == [
        "[kind] kind create cluster cth-r1 (3 nodes) ...",
        "[kind] kind create cluster cth-r1 (3 nodes): done (61.2s)",
        "[kind] node image ...",
        "[kind] node image: conntrack-harness/kind-node:v1.35.4-abc already built (2.0s)",
    ]


def test_a_failed_stage_says_so_and_the_error_goes_on() -> None:
    st, lines, clock = stages()
    with pytest.raises(BackendError), st.stage("waiting for 3 nodes Ready"):
        clock.now += 300
        raise BackendError("timed out")
    assert lines[-1] == "[kind] waiting for 3 nodes Ready: failed after 300.0s"


def test_without_a_listener_nothing_is_said_and_a_failing_listener_is_ignored() -> None:
    with Stages(None).stage("x"):
        pass

    def broken(_line: str) -> None:
        raise OSError("stderr closed")

    with Stages(broken).stage("y") as s:
        s.result = "fine"  # the step itself is not affected


def test_teardown_is_reported_once_it_has_unwound() -> None:
    st, lines, clock = stages()
    with ExitStack() as stack:
        down = st.teardown(stack)
        stack.callback(lambda: setattr(clock, "now", clock.now + 12))  # e.g. kind delete
        down.begin()
        down.begin()  # idempotent
        assert lines == ["[kind] teardown ..."]
    assert lines == ["[kind] teardown ...", "[kind] teardown: done (12.0s)"]


def test_teardown_after_a_failure_is_done_and_a_failing_teardown_says_so() -> None:
    st, lines, _ = stages()
    cause = BackendError("phase broke")
    with pytest.raises(BackendError), ExitStack() as stack:
        down = st.teardown(stack)
        down.begin(cause)
        raise cause
    assert lines[-1].startswith("[kind] teardown: done")

    st, lines, _ = stages()

    def leave() -> None:
        raise RestoreFailed("a container is left")

    with pytest.raises(RestoreFailed), ExitStack() as stack:
        down = st.teardown(stack)
        stack.callback(leave)
        down.begin()
    assert lines[-1].startswith("[kind] teardown: failed after")


def test_teardown_never_begun_says_nothing() -> None:
    st, lines, _ = stages()
    with ExitStack() as stack:
        st.teardown(stack)
    assert lines == []
