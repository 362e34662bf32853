"""cluster.kube_proxy {mode, version} and cluster.coredns.corefile: validated at load time
(exit 2 naming the field and the allowed values) and carried through the phase plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cthcommon.errors import BadInput
from harness.backends.netns.k8s.coredns import configured
from harness.plan.phase import plan_run
from harness.scenario.loader import parse_scenario, read_scenario
from harness.upstream import default_version, releases

REPO = Path(__file__).resolve().parents[3]
MINIMAL = ".:53 {\n    kubernetes cluster.local\n    forward . 1.2.3.4\n}\n"


def scenario_data(**cluster: Any) -> dict[str, Any]:
    return {
        "name": "fields",
        "cluster": cluster,
        "phases": [
            {"name": "base"},
            {"name": "fix", "remediations": [{"kind": "coredns", "max_concurrent": 7}]},
        ],
    }


def test_kube_proxy_defaults_to_iptables_and_the_pinned_default() -> None:
    run = plan_run(parse_scenario(scenario_data()))
    assert run.kube_proxy.mode == "iptables"
    assert run.kube_proxy.version == default_version()
    assert all(p.kube_proxy == run.kube_proxy for p in run.phases)


@pytest.mark.parametrize("version", sorted(releases()))
def test_every_pinned_version_and_mode_is_planned(version: str) -> None:
    s = parse_scenario(scenario_data(kube_proxy={"mode": "nftables", "version": version}))
    run = plan_run(s)
    assert (run.kube_proxy.mode, run.kube_proxy.version) == ("nftables", version)


@pytest.mark.parametrize(
    ("kp", "field", "allowed"),
    [
        ({"mode": "ipvs"}, "cluster.kube_proxy.mode", ["iptables", "nftables"]),
        ({"version": "v1.99.0"}, "cluster.kube_proxy.version", sorted(releases())),
        ({"modee": "nftables"}, "cluster.kube_proxy.modee", []),
    ],
)
def test_bad_kube_proxy_is_bad_input_naming_field_and_allowed(
    kp: dict[str, str], field: str, allowed: list[str]
) -> None:
    with pytest.raises(BadInput) as e:
        parse_scenario(scenario_data(kube_proxy=kp))
    assert e.value.exit_code == 2
    assert e.value.field == field
    for a in allowed:
        assert a in str(e.value)


def test_corefile_is_resolved_from_the_scenario_file(tmp_path: Path) -> None:
    (tmp_path / "cf").mkdir()
    (tmp_path / "cf" / "my.Corefile").write_text(MINIMAL)
    s = parse_scenario(scenario_data(coredns={"corefile": "cf/my.Corefile"}), base_dir=tmp_path)
    run = plan_run(s)
    want = str(tmp_path / "cf" / "my.Corefile")
    assert run.coredns.corefile == want
    assert run.coredns.cache is None  # the user's file runs as written
    # the coredns remediation keeps the user's file and edits it
    fix = run.phase("fix").coredns
    assert (fix.corefile, fix.cache, fix.max_concurrent) == (want, None, 7)


def test_corefile_cache_set_explicitly_is_applied(tmp_path: Path) -> None:
    (tmp_path / "c").write_text(MINIMAL)
    s = parse_scenario(scenario_data(coredns={"corefile": "c", "cache": False}), base_dir=tmp_path)
    assert plan_run(s).coredns.cache is False


def test_missing_corefile_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput) as e:
        parse_scenario(scenario_data(coredns={"corefile": "nope.Corefile"}), base_dir=tmp_path)
    assert e.value.field == "cluster.coredns.corefile"
    assert "nope.Corefile" in str(e.value)


def test_shipped_seed000_corefile_scenario() -> None:
    s, _ = read_scenario(REPO / "scenarios" / "coredns-own-corefile.yaml")
    run = plan_run(s)
    path = REPO / "scenarios" / "corefiles" / "seed000.Corefile"
    assert run.coredns.corefile == str(path)
    text = path.read_text()
    assert "max_concurrent 1000" in text
    assert "cache 30" in text
    # as written at baseline; the second phase's remediation removes the cache, nothing else
    assert configured(text, cache=None, max_concurrent=None) == text
    fix = run.phase("seed-corefile-no-cache").coredns
    edited = configured(text, cache=fix.cache, max_concurrent=fix.max_concurrent)
    assert "cache" not in edited
    assert "max_concurrent 1000" in edited
    assert fix.corefile == str(path)
