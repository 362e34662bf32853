import pytest

from harness.backends.netns.startmarks import Marks, line

pytestmark = pytest.mark.unit


def test_line_orders_stages_by_when_they_were_done() -> None:
    assert line({"etcd": 0.61, "pki": 0.3, "kube-apiserver": 2.345}) == (
        "pki 0.30s, etcd 0.61s, kube-apiserver 2.35s"
    )


def test_marks_are_seconds_since_the_start() -> None:
    now = [10.0]
    m = Marks(clock=lambda: now[0])
    now[0] = 10.5
    assert m.mark("namespaces") == 0.5
    now[0] = 12.0
    m.mark("etcd")
    assert m.at == {"namespaces": 0.5, "etcd": 2.0}
    assert m.line() == "namespaces 0.50s, etcd 2.00s"
