"""Every file in malformed/ must be refused with BadInput naming the offending field path."""

from __future__ import annotations

from pathlib import Path

import pytest

from cthcommon.errors import BadInput
from harness.scenario.loader import load_scenario

HERE = Path(__file__).parent / "malformed"

# file stem -> (field path the error must name, a word the message must contain)
EXPECTED: dict[str, tuple[str, str]] = {
    "01_yaml_unclosed_bracket": ("(file)", "YAML"),
    "02_yaml_bad_indent": ("(file)", "YAML"),
    "03_top_level_list": ("(top level)", "mapping"),
    "04_empty_file": ("(top level)", "mapping"),
    "05_missing_name": ("name", "required"),
    "06_missing_phases": ("phases", "required"),
    "07_empty_phases": ("phases", "at least 1"),
    "08_bad_scenario_name": ("name", "pattern"),
    "09_wrong_api_version": ("apiVersion", "conntrack-harness/v1"),
    "10_wrong_kind": ("kind", "Scenario"),
    "11_unknown_top_level_key": ("colour", "not permitted"),
    "12_nodes_not_int": ("cluster.nodes", "integer"),
    "13_nodes_zero": ("cluster.nodes", "greater than or equal to 1"),
    "14_nodes_too_many": ("cluster.nodes", "less than or equal to 8"),
    "15_client_pods_out_of_range": ("cluster.client_pods", "less than or equal to 64"),
    "16_coredns_replicas_zero": ("cluster.coredns.replicas", "greater than or equal to 1"),
    "17_client_node_not_a_node": ("cluster.client_node", "node-5"),
    "18_coredns_unknown_key": ("cluster.coredns.replica", "not permitted"),
    "19_nameserver_not_ip": ("cluster.dns_config.nameservers", "kube-dns.local"),
    "20_too_many_nameservers": ("cluster.dns_config.nameservers", "at most 3"),
    "21_unknown_resolver_option": ("cluster.dns_config.options[0]", "fast-mode"),
    "22_ndots_out_of_range": ("cluster.dns_config.options[0]", "0..15"),
    "23_timeout_without_value": ("cluster.dns_config.options[1]", "timeout"),
    "24_flag_option_with_value": ("cluster.dns_config.options[0]", "takes no value"),
    "25_bad_dns_policy": ("cluster.dns_config.policy", "ClusterFirst"),
    "26_masquerade_not_bool": ("cluster.masquerade_all", "boolean"),
    "27_host_conntrack_max_too_small": ("host.nf_conntrack_max", "64"),
    "28_time_wait_zero": ("node_sysctls.tcp_timeout_time_wait", "greater than or equal to 1"),
    "29_negative_duration": ("load.duration_s", "greater than 0"),
    "30_bad_http_mode": ("load.http.mode", "pooled"),
    "31_bad_resolver_model": ("load.dns.resolver", "musl"),
    "32_empty_dns_names": ("load.dns.names", "at least 1"),
    "33_http_rate_too_high": ("load.http.rate", "50000"),
    "34_bad_phase_name": ("phases[0].name", "pattern"),
    "35_duplicate_phases": ("phases[2].name", "used twice"),
    "36_unknown_remediation": ("phases[1].remediations[0]", "magic"),
    "37_pool_size_zero": ("phases[0].remediations[0].pool_size", "greater than or equal to 1"),
    "38_remediation_bad_option": ("phases[0].remediations[0].options[1]", "turbo"),
    "39_fault_probability_above_one": ("phases[0].faults[0].probability", "less than or equal"),
    "40_fault_not_injected": ("phases[0].faults[0].injected", "True"),
    "41_expectation_bad_operator": ("phases[0].expect[0]", "<metric> <op> <number>"),
    "42_expectation_unknown_metric": ("phases[1].expect[1]", "dns.speed"),
    "43_repeat_zero": ("phases[0].repeat", "greater than or equal to 1"),
    "44_phase_load_duration_not_number": ("phases[0].load.duration_s", "number"),
    "45_phases_not_a_list": ("phases", "list"),
    # checked as Kubernetes checks them, before the lock (the run once got HTTP 422, exit 3,
    # or crashed with exit 5)
    "46_namespace_not_rfc1123": ("cluster.namespace", "allowed: lowercase letters, digits"),
    "47_cluster_domain_not_rfc1123": ("cluster.cluster_domain", "allowed: RFC 1123 labels"),
    # a scenario names only a Corefile inside its own directory, a regular file with a
    # kubernetes plugin (what CoreDNS itself rejects: tests/kernel/test_own_corefile_broken)
    "48_corefile_outside_absolute": ("cluster.coredns.corefile", "must be a file inside"),
    "49_corefile_escapes_directory": ("cluster.coredns.corefile", "must be a file inside"),
    "50_corefile_not_a_corefile": ("cluster.coredns.corefile", "needs one"),
    "51_corefile_is_a_directory": ("cluster.coredns.corefile", "must be a regular file"),
}


def test_table_and_directory_agree() -> None:
    on_disk = {p.stem for p in HERE.glob("*.yaml")}
    assert on_disk == set(EXPECTED)
    assert len(on_disk) >= 40


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_malformed_file_names_its_field(stem: str) -> None:
    field, word = EXPECTED[stem]
    path = HERE / f"{stem}.yaml"
    with pytest.raises(BadInput) as info:
        load_scenario(path)
    err = info.value
    assert err.field == field
    assert f"field '{field}'" in str(err)
    assert word in str(err)
    assert str(path) in str(err)  # the message names the file too
    assert err.exit_code == 2


def test_shared_header_is_valid_on_its_own(tmp_path: Path) -> None:
    # The files share this header; the failures come from the broken part alone.
    ok = tmp_path / "valid.yaml"
    ok.write_text(
        "apiVersion: conntrack-harness/v1\nkind: Scenario\nname: bad-example\n"
        "phases:\n  - name: baseline\n"
    )
    assert load_scenario(ok).name == "bad-example"


def _host_state() -> tuple[str, str, frozenset[str], frozenset[str]]:
    """What a run could change on the host: the global table size, its hash size, the
    network namespaces and the per-namespace resolv.conf dirs."""
    netns, etc = Path("/run/netns"), Path("/etc/netns")
    return (
        Path("/proc/sys/net/netfilter/nf_conntrack_max").read_text(),
        Path("/proc/sys/net/netfilter/nf_conntrack_buckets").read_text(),
        frozenset(p.name for p in netns.iterdir()) if netns.is_dir() else frozenset(),
        frozenset(p.name for p in etc.iterdir()) if etc.is_dir() else frozenset(),
    )


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_cli_run_exits_2_naming_the_field_and_touches_nothing(
    stem: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness import runner
    from harness.cli import main

    locks: list[float] = []

    class NoLock:  # the host lock, as the run would take it: recorded, never taken
        def __init__(self, wait_s: float = 0.0) -> None:
            locks.append(wait_s)

        def __enter__(self) -> None:
            return None

        def __exit__(self, *exc: object) -> None:
            return None

    monkeypatch.setattr(runner, "HostLock", NoLock)
    field, word = EXPECTED[stem]
    before = _host_state()
    assert main(["run", str(HERE / f"{stem}.yaml")]) == 2
    err = capsys.readouterr().err
    assert f"field '{field}'" in err
    assert word in err  # what is allowed, or what is wrong
    assert len(err.strip().splitlines()) == 1  # one clear line, no traceback
    assert locks == []  # refused before the host lock was even asked for
    assert _host_state() == before
