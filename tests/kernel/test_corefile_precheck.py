"""The pinned CoreDNS parses a Corefile before the run, in a throwaway namespace: what it
accepts passes, what it rejects is quoted at the user's line, and neither leaves a process,
a namespace or a temporary file behind. Root (unshare), no host lock: nothing on the host
changes. ~5 s."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cthcommon.errors import BadInput
from harness.backends.netns.k8s import corefilecheck
from harness.backends.netns.k8s.coredns import kubeadm_corefile
from harness.plan.types import CorefilePlan
from harness.upstream import ComponentMissing, locate

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[2]
UPSTREAM = "203.0.113.53"
MARK = b"conntrack-harness-corefile-"


def _ours() -> tuple[frozenset[int], frozenset[str]]:
    """Processes running on a pre-check's files, and the pre-check's temporary dirs."""
    procs = set()
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if MARK in (p / "cmdline").read_bytes():
                    procs.add(int(p.name))
            except OSError:
                continue
    tmp = Path("/tmp")
    return frozenset(procs), frozenset(d.name for d in tmp.glob(MARK.decode() + "*"))


@pytest.fixture
def nothing_left() -> Iterator[None]:
    if locate_or_none() is None:
        pytest.skip("coredns not built yet (conntrack-harness upstream build)")
    before = _ours()
    yield
    # the namespaces are anonymous (nothing in /run/netns, no bind mount outside them): with
    # their processes gone, they are gone. Other helpers' runs may change the host meanwhile,
    # so only the pre-check's own marks are compared.
    procs, dirs = _ours()
    # nothing new is left (a dead check's directory from before may have been swept meanwhile)
    assert procs <= before[0]
    assert dirs <= before[1]


def locate_or_none() -> Path | None:
    try:
        return locate("coredns")
    except ComponentMissing:
        return None


def check(path: Path, text: str | None = None) -> None:
    corefilecheck.check(
        [path.read_text() if text is None else text],
        user=CorefilePlan(source=str(path), text=path.read_text()),
        kubernetes=None,
        upstream=UPSTREAM,
    )


def test_corefiles_coredns_accepts_pass(tmp_path: Path, nothing_left: None) -> None:
    seed = REPO / "scenarios" / "corefiles" / "seed000.Corefile"
    kubeadm = tmp_path / "kubeadm.Corefile"
    kubeadm.write_text(kubeadm_corefile("cluster.local"))
    # a bind address only the pod has: parsed, though not servable in the throwaway namespace
    bound = tmp_path / "bound.Corefile"
    bound.write_text(".:53 {\n    bind 10.244.9.9\n    kubernetes cluster.local\n}\n")
    for f in (seed, kubeadm, bound):
        check(f)


@pytest.mark.parametrize(
    ("body", "line", "says"),
    [
        ("    no_such_plugin 30\n", 4, "Unknown directive 'no_such_plugin'"),
        ("    forward . not-an-address\n", None, 'not an IP address or file: "not-an-address"'),
        ("    loop extra\n", 4, "Wrong argument count or unexpected line ending after 'extra'"),
        ("    cache -5\n", None, "plugin/cache: cache TTL can not be zero or negative: -5"),
    ],
)
def test_what_coredns_rejects_is_quoted_at_the_users_line(
    tmp_path: Path, nothing_left: None, body: str, line: int | None, says: str
) -> None:
    f = tmp_path / "bad.Corefile"
    f.write_text(".:53 {\n    errors\n    kubernetes cluster.local\n" + body + "}\n")
    with pytest.raises(BadInput) as e:
        check(f)
    msg = str(e.value)
    assert e.value.field == "cluster.coredns.corefile"
    assert says in msg, msg
    assert "/tmp/conntrack-harness-corefile-" not in msg  # the user's file, not our copy
    if line is not None:
        assert f"{f}:{line}" in msg, msg
    assert msg.count("\n") == 0  # one line, never the file
