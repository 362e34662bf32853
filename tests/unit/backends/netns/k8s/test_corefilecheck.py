"""The Corefile pre-check's pure parts: reading CoreDNS's output, the throwaway namespace's
command line, and a CoreDNS not built yet (the same prerequisite doctor names)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cthcommon.errors import MissingTool
from harness.backends.netns.k8s import corefilecheck
from harness.backends.netns.k8s.corefilecheck import argv, judge
from harness.plan.types import CorefilePlan
from harness.upstream import ComponentMissing

pytestmark = pytest.mark.unit

BANNER = "maxprocs: Leaving GOMAXPROCS=2\n.:53\nCoreDNS-1.13.1\nlinux/amd64, go1.25.4, \n"
WAITING = "[INFO] plugin/kubernetes: waiting for Kubernetes API before starting server\n"
UNKNOWN = (
    "maxprocs: Leaving GOMAXPROCS=2: CPU quota undefined\n"
    "/tmp/x/Corefile:9 - Error during parsing: Unknown directive 'no_such_plugin'\n"
)


def test_set_up_is_parsed_whether_serving_or_waiting_for_the_api() -> None:
    for log in (BANNER, WAITING):
        v = judge(log, exited=False)
        assert v is not None
        assert v.ok


def test_nothing_yet_is_no_verdict_and_an_exit_is_the_error_line() -> None:
    assert judge("maxprocs: Leaving GOMAXPROCS=2\n", exited=False) is None
    v = judge(UNKNOWN, exited=True)
    assert v is not None
    assert not v.ok
    assert v.error == "/tmp/x/Corefile:9 - Error during parsing: Unknown directive 'no_such_plugin'"


def test_an_address_only_the_pod_has_is_not_a_parse_error() -> None:
    log = "Listen: listen tcp 10.1.2.3:53: bind: cannot assign requested address\n"
    v = judge(log, exited=True)
    assert v is not None
    assert v.ok


def test_coredns_runs_in_new_net_and_mount_namespaces_that_die_with_it() -> None:
    a = argv(Path("/c/coredns"), Path("/t/Corefile"), Path("/t/resolv.conf"))
    assert a[0] == "unshare"
    for flag in ("--net", "--mount", "--fork", "--kill-child"):
        assert flag in a
    assert a[a.index("--propagation") + 1] == "private"  # the bind mount stays inside
    assert a[-3:] == ["/t/resolv.conf", "/c/coredns", "/t/Corefile"]


def test_coredns_not_built_is_the_prerequisite_doctor_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def missing(binary: str, kubernetes: str | None = None) -> Path:
        raise ComponentMissing(
            "coredns v1.13.1 is not in the cache (/x); run `conntrack-harness upstream build`"
        )

    monkeypatch.setattr(corefilecheck, "locate", missing)
    (tmp_path / "Corefile").write_text(".:53 {\n kubernetes cluster.local\n}\n")
    with pytest.raises(MissingTool) as e:
        corefilecheck.check(
            ["x"],
            user=CorefilePlan(str(tmp_path / "Corefile"), (tmp_path / "Corefile").read_text()),
            kubernetes=None,
            upstream="203.0.113.53",
        )
    assert e.value.exit_code == 2
    assert "CoreDNS checks the Corefile before the run" in str(e.value)
    assert "upstream build" in str(e.value)


def test_an_error_quoting_the_banner_text_is_still_an_error() -> None:
    log = "/tmp/x/Corefile:2 - Error during parsing: Unknown directive 'CoreDNS-1.13.1'\n"
    assert judge(log, exited=False) is None
    v = judge(log, exited=True)
    assert v is not None
    assert not v.ok
