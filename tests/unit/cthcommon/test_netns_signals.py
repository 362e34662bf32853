"""A Ctrl-C never leaves a thread in a pod's namespace: :func:`cthcommon.netns.entered` holds
SIGINT/SIGTERM/SIGHUP from the setns into the namespace until the setns back home, and
delivers them after. Found by the cold CI run of issue 19: a Ctrl-C during the aged warm-up
(thousands of sockets opened in the pods' namespaces) landed between the two setns calls, the
run's cleanup then read the host's nf_conntrack_max from inside a pod's namespace, saw the
original value there, and left the host's table at the scenario's 4,096 entries."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from cthcommon import netns

pytestmark = pytest.mark.unit


class Stop(Exception):
    pass


@pytest.fixture
def raising_sigint() -> Iterator[None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise Stop(signum)

    old = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def test_a_signal_at_the_switch_back_waits_until_the_thread_is_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raising_sigint: None
) -> None:
    (tmp_path / "pod").write_text("")
    monkeypatch.setattr(netns, "netns_path", lambda name: str(tmp_path / name))
    calls: list[str] = []
    switches = iter(["into the pod", "home"])

    def setns(fd: int) -> None:
        where = next(switches)
        if where == "home":
            signal.raise_signal(signal.SIGINT)  # Ctrl-C right as the thread switches back
        calls.append(where)

    monkeypatch.setattr(netns, "_setns", setns)
    caller = signal.getsignal(signal.SIGINT)
    with pytest.raises(Stop), netns.entered("pod"):
        calls.append("body")
    # the switch back happened, and the Ctrl-C still stopped the caller, after it
    assert calls == ["into the pod", "body", "home"]
    assert signal.getsignal(signal.SIGINT) is caller  # the caller's handler is back


def test_a_signal_in_the_body_is_delivered_once_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raising_sigint: None
) -> None:
    (tmp_path / "pod").write_text("")
    monkeypatch.setattr(netns, "netns_path", lambda name: str(tmp_path / name))
    calls: list[str] = []
    monkeypatch.setattr(netns, "_setns", lambda fd: calls.append("setns"))
    with pytest.raises(Stop), netns.entered("pod"):
        signal.raise_signal(signal.SIGINT)
        calls.append("body went on")
    assert calls == ["setns", "body went on", "setns"]
