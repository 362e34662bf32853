"""Scenario fields a cluster backend cannot honour are refused with exit 2 before anything
changes, never silently ignored; kind honours kube-proxy's mode."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cthcommon.errors import BadInput
from harness import cli, runner
from harness.backendcheck import check_cluster_fields
from harness.backends.kube import kindconfig
from harness.plan.phase import plan_run
from harness.scenario.loader import load_scenario
from harness.upstream import default_version, releases


def _scenario(tmp_path: Path, cluster: dict[str, Any]) -> Path:
    (tmp_path / "Corefile").write_text(".:53 {\n    kubernetes cluster.local\n}\n")
    doc = {
        "apiVersion": "conntrack-harness/v1",
        "kind": "Scenario",
        "name": "fields",
        "cluster": cluster,
        "phases": [{"name": "baseline"}],
    }
    p = tmp_path / "s.yaml"
    p.write_text(json.dumps(doc))
    return p


@pytest.mark.parametrize("backend", ["kind", "kubeconfig"])
def test_a_corefile_is_refused_on_cluster_backends(tmp_path: Path, backend: str) -> None:
    sc = load_scenario(str(_scenario(tmp_path, {"coredns": {"corefile": "Corefile"}})))
    with pytest.raises(BadInput) as e:
        check_cluster_fields(backend, sc)
    assert e.value.field == "cluster.coredns.corefile"
    assert "netns" in str(e.value)
    check_cluster_fields("netns", sc)  # where it is honoured


def test_kube_proxy_settings_are_refused_where_the_cluster_runs_its_own(tmp_path: Path) -> None:
    sc = load_scenario(str(_scenario(tmp_path, {"kube_proxy": {"mode": "nftables"}})))
    with pytest.raises(BadInput) as e:
        check_cluster_fields("kubeconfig", sc)
    assert e.value.field == "cluster.kube_proxy"
    # without the field, the same backend is fine
    check_cluster_fields("kubeconfig", load_scenario(str(_scenario(tmp_path, {"nodes": 2}))))


def test_kind_takes_the_mode_and_refuses_another_release(tmp_path: Path) -> None:
    sc = load_scenario(str(_scenario(tmp_path, {"kube_proxy": {"mode": "nftables"}})))
    check_cluster_fields("kind", sc)
    cfg = kindconfig.render(plan_run(sc), "cth-x")
    assert cfg["networking"]["kubeProxyMode"] == "nftables"
    patches = "".join(cfg["kubeadmConfigPatches"])
    assert "nftables:\n  masqueradeAll: true" in patches  # as the netns backend sets it
    other = sorted(set(releases()) - {default_version()})
    if not other:
        pytest.skip("only one release is pinned")
    sc2 = load_scenario(str(_scenario(tmp_path, {"kube_proxy": {"version": other[0]}})))
    with pytest.raises(BadInput) as e:
        check_cluster_fields("kind", sc2)
    assert e.value.field == "cluster.kube_proxy.version"


def test_the_cli_refuses_before_the_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    touched: list[str] = []
    monkeypatch.setattr(runner, "HostLock", lambda *_a: touched.append("lock"))
    sc = _scenario(tmp_path, {"coredns": {"corefile": "Corefile"}})
    rc = cli.main(["run", str(sc), "--backend", "kind"])
    assert rc == 2
    assert "cluster.coredns.corefile" in capsys.readouterr().err
    assert touched == []


@pytest.mark.parametrize("backend", ["kind", "kubeconfig"])
def test_a_rollout_is_refused_on_cluster_backends(tmp_path: Path, backend: str) -> None:
    doc = json.loads(_scenario(tmp_path, {"nodes": 2}).read_text())
    doc["phases"] = [{"name": "roll", "rollout": {"at_s": 1}}]
    (tmp_path / "s.yaml").write_text(json.dumps(doc))
    sc = load_scenario(str(tmp_path / "s.yaml"))
    with pytest.raises(BadInput) as e:
        check_cluster_fields(backend, sc)
    assert e.value.field == "phases[0].rollout"
    check_cluster_fields("netns", sc)
