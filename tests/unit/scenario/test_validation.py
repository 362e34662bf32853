"""Validation that must refuse bad scenarios before any host change (issue 13 §5)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cthcommon.errors import BadInput
from harness.scenario.loader import MAX_SCENARIO_BYTES, load_scenario, parse_scenario

INT_MAX = 2**31 - 1  # the sysctl is a C int (proc_dointvec)

HEAD = "apiVersion: conntrack-harness/v1\nkind: Scenario\nname: v\n"


def _base(**extra: object) -> dict[str, object]:
    doc: dict[str, object] = {"name": "v", "phases": [{"name": "baseline"}]}
    doc.update(extra)
    return doc


def _bad(doc: dict[str, object]) -> BadInput:
    with pytest.raises(BadInput) as info:
        parse_scenario(doc)
    return info.value


def test_external_name_must_map_to_an_ipv4() -> None:
    err = _bad(_base(cluster={"external_names": {"api.example.com": "not-an-ip"}}))
    assert err.field == "cluster.external_names.api.example.com"
    assert "not-an-ip" in str(err)
    assert "IPv4" in str(err)


def test_external_name_must_be_a_dns_name() -> None:
    err = _bad(_base(cluster={"external_names": {"a b": "203.0.113.9"}}))
    assert "not a DNS name" in str(err)


@pytest.mark.parametrize("name", ["", "a b", "a..b", "-" * 64, "x\ty"])
def test_lookup_names_rejected(name: str) -> None:
    err = _bad(_base(load={"dns": {"names": ["http-server", name]}}))
    assert err.field == "load.dns.names[1]"
    assert "not a DNS name" in str(err)


@pytest.mark.parametrize(
    "name", ["http-server", "kube-dns.kube-system", "api.example.com.", "u{n}.example.org."]
)
def test_lookup_names_accepted(name: str) -> None:
    s = parse_scenario(_base(load={"dns": {"names": [name]}}))
    assert s.load.dns is not None
    assert s.load.dns.names == [name]


@pytest.mark.parametrize("section", ["node_sysctls", "remediation"])
@pytest.mark.parametrize("buckets", [-5, 0])
def test_buckets_must_be_positive(section: str, buckets: int) -> None:
    if section == "node_sysctls":
        doc = _base(node_sysctls={"nf_conntrack_buckets": buckets})
        field = "node_sysctls.nf_conntrack_buckets"
    else:
        doc = _base(
            phases=[
                {
                    "name": "p",
                    "remediations": [
                        {"kind": "conntrack-sysctls", "nf_conntrack_buckets": buckets}
                    ],
                }
            ]
        )
        field = "phases[0].remediations[0].nf_conntrack_buckets"
    err = _bad(doc)
    assert err.field is not None
    assert err.field.startswith(field)
    assert re.search(r"greater than or equal to 1\b|\b1\.\.", str(err)), str(err)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (_base(host={"nf_conntrack_max": 10**12}), "host.nf_conntrack_max"),
        (_base(node_sysctls={"nf_conntrack_max": 10**12}), "node_sysctls.nf_conntrack_max"),
        (
            _base(
                phases=[
                    {
                        "name": "p",
                        "remediations": [{"kind": "conntrack-sysctls", "nf_conntrack_max": 10**12}],
                    }
                ]
            ),
            "phases[0].remediations[0].nf_conntrack_max",
        ),
    ],
)
def test_conntrack_max_is_bounded(doc: dict[str, object], field: str) -> None:
    err = _bad(doc)
    assert err.field == field
    # the kernel's sysctl is a C int: nothing above INT_MAX can be written
    bound = re.search(r"less than or equal to (\d+)", str(err))
    assert bound, str(err)
    assert int(bound.group(1)) <= INT_MAX


def test_remediation_nested_under_its_kind_says_what_to_write() -> None:
    doc = _base(
        phases=[
            {"name": "baseline"},
            {
                "name": "p",
                "remediations": ["pooling", {"conntrack-sysctls": {"nf_conntrack_max": 1 << 17}}],
            },
        ]
    )
    err = _bad(doc)
    assert err.field == "phases[1].remediations[1]"
    assert "write `kind: conntrack-sysctls`" in str(err)


def test_every_validation_error_is_shown() -> None:
    doc = _base(
        cluster={"nodes": 0, "client_pods": 1000},
        load={"duration_s": -1, "dns": {"rate": 0}},
    )
    err = _bad(doc)
    text = str(err)
    assert "more problem" not in text
    assert "4 problems in all" in text
    for field in ("cluster.nodes", "cluster.client_pods", "load.duration_s", "load.dns.rate"):
        assert f"field '{field}'" in text
    assert err.field == "cluster.nodes"  # the first one still names itself


def test_duplicate_keys_rejected(tmp_path: Path) -> None:
    f = tmp_path / "dup.yaml"
    f.write_text(
        HEAD + "load:\n  duration_s: 5\n  http: {rate: 500}\n  duration_s: 30\n"
        "phases:\n  - name: baseline\n"
    )
    with pytest.raises(BadInput) as info:
        load_scenario(f)
    assert info.value.field == "(file)"
    assert "duplicate key 'duration_s'" in str(info.value)
    assert "line 7" in str(info.value)  # where the second one is


def test_duplicate_keys_in_flow_mapping_rejected(tmp_path: Path) -> None:
    f = tmp_path / "dup.yaml"
    f.write_text(HEAD + "load: {http: {rate: 1, rate: 2}}\nphases:\n  - name: baseline\n")
    with pytest.raises(BadInput, match="duplicate key 'rate'"):
        load_scenario(f)


def test_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    f = tmp_path / "merge.yaml"
    f.write_text(
        HEAD
        + "x-load: &l {duration_s: 5, http: {rate: 10}}\n".replace("x-load", "load")
        + "phases:\n  - name: baseline\n    load:\n      <<: *l\n      duration_s: 7\n"
    )
    s = load_scenario(f)
    assert s.phases[0].load is not None
    assert s.phases[0].load.duration_s == 7


def test_huge_file_refused_quickly(tmp_path: Path) -> None:
    f = tmp_path / "big.yaml"
    f.write_text(HEAD + "description: '" + "x" * MAX_SCENARIO_BYTES + "'\nphases: [{name: a}]\n")
    with pytest.raises(BadInput) as info:
        load_scenario(f)
    assert info.value.exit_code == 2
    assert info.value.field == "(file)"
    assert f"at most {MAX_SCENARIO_BYTES} bytes" in str(info.value)


def test_cli_validate_exits_2_on_huge_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from harness.cli import main

    f = tmp_path / "big.yaml"
    f.write_text(HEAD + "description: '" + "x" * MAX_SCENARIO_BYTES + "'\nphases: [{name: a}]\n")
    assert main(["validate", str(f)]) == 2
    assert "at most" in capsys.readouterr().err


def test_shipped_scenarios_still_load() -> None:
    root = Path(__file__).parents[3] / "scenarios"
    files = sorted(root.glob("*.yaml"))
    assert files
    for f in files:
        load_scenario(f)
