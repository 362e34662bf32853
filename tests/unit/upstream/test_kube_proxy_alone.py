"""kube-proxy alone from another release (`compare --run --parts kube-proxy`): only its
kube-proxy is built, each run gets it through BackendOptions, and the skew is labelled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cthcommon.errors import BadInput
from harness import backendcheck, cli, runner
from harness.backends import registry
from harness.backends.base import KUBE_PROXY_RELEASE, KUBERNETES_RELEASE, BackendOptions
from harness.results.record import RunRecord
from harness.scenario.model import Scenario
from harness.upstream import build as builder
from harness.upstream import default_version, releases
from harness.upstream.ondemand import NETNS_BINARIES, ensure
from harness.upstream.skew import skew_note, within_skew
from tests.unit.test_cli_compare import write_scenario

pytestmark = pytest.mark.unit


def _other() -> str:
    return next(v for v in sorted(releases()) if v != default_version())


def test_only_the_other_releases_kube_proxy_is_built() -> None:
    default, other = default_version(), _other()
    have = {(c, v, b) for c, v, b in _all(default)}  # the default release is all built
    lines: list[str] = []
    ran: list[builder.Task] = []

    def run(tasks: list[builder.Task]) -> list[builder.Outcome]:
        ran.extend(tasks)
        return [builder.Outcome(t, "installed", 1.0, "") for t in tasks]

    ensure(
        "netns",
        None,
        say=lines.append,
        is_installed=lambda c, v, b: (c, v, b) in have,
        run=run,
        kube_proxy=other,
    )
    assert [(t.version, t.binaries) for t in ran] == [(other, ("kube-proxy",))]
    assert f"kube-proxy {other}" in lines[0]
    # without kube_proxy, the other release is built whole
    ran.clear()
    ensure(
        "netns", other, say=lines.append, is_installed=lambda c, v, b: (c, v, b) in have, run=run
    )
    assert {b for t in ran for b in t.binaries} == NETNS_BINARIES


def _all(version: str) -> list[tuple[str, str, str]]:
    from harness.upstream import BINARY_COMPONENT

    rel = releases()[version]
    return [(BINARY_COMPONENT[b], rel.version_of(BINARY_COMPONENT[b]), b) for b in NETNS_BINARIES]


@pytest.mark.parametrize(
    ("proxy", "apiserver", "ok"),
    [
        ("v1.35.4", "v1.35.4", True),
        ("v1.34.4", "v1.37.2", True),  # three minors older
        ("v1.33.0", "v1.37.2", False),  # four
        ("v1.37.2", "v1.35.4", False),  # newer than the apiserver
    ],
)
def test_the_skew_policy(proxy: str, apiserver: str, ok: bool) -> None:
    assert within_skew(proxy, apiserver) is ok
    assert skew_note(proxy, apiserver).startswith("within" if ok else "OUTSIDE")


def test_parts_kube_proxy_passes_each_release_as_kube_proxy_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[tuple[str | None, str | None]] = []

    def fake(record: RunRecord, scenario: Scenario, **kw: Any) -> RunRecord:
        extra = kw["options"].extra
        seen.append((extra.get(KUBERNETES_RELEASE), extra.get(KUBE_PROXY_RELEASE)))
        record.finish()
        return record

    monkeypatch.setattr(runner, "require_root", lambda *_a: None)
    monkeypatch.setattr(runner, "run", fake)
    monkeypatch.setattr(registry, "check_backend_ready", lambda *a, **k: None)
    s = write_scenario(tmp_path)
    argv = ["compare", "--run", str(s), "--kubernetes", "v1.35.4", "v1.37.2", "--parts"]
    cli.main([*argv, "kube-proxy", "--report-dir", str(tmp_path / "r"), "--json"])
    assert seen == [(None, "v1.35.4"), (None, "v1.37.2")]
    assert json.loads(capsys.readouterr().out)["a_file"].endswith("v1.35.4/result.json")


def test_parts_is_bad_input_without_run_and_netns_only() -> None:
    assert cli.main(["compare", "a.json", "b.json", "--parts", "kube-proxy"]) == 2
    options = BackendOptions(extra={KUBE_PROXY_RELEASE: "v1.37.2"})
    scenario = Scenario.model_validate({"name": "x", "phases": [{"name": "p"}]})
    with pytest.raises(BadInput, match="--parts kube-proxy"):
        backendcheck.check_backend("kind", scenario, options)
    backendcheck.check_backend("netns", scenario, options)
