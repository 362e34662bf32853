from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from kube_fakes import scenario

from cthcommon.errors import BackendError, BadInput
from harness.backends.kube import commands, counters, tuner
from harness.backends.kube.hostsysctl import needs_host, phase_host_sysctls, run_host_sysctls
from harness.backends.kube.placement import NodeMap
from harness.backends.kube.podplans import pod_worker_argv
from harness.dataplane.faults import race_window_ruleset
from harness.plan.phase import plan_phase, plan_run

NODES = NodeMap({"node-1": "w1"}, {"node-1": "w1"})


def test_phase_sysctls_and_fault(scn) -> None:  # type: ignore[no-untyped-def]
    sysctls_phase = plan_phase(scn, next(p for p in scn.phases if p.name == "sysctls"))
    on_node, rules = tuner.phase_changes(sysctls_phase, "r1", include_global=True)
    assert on_node == {
        "net.netfilter.nf_conntrack_max": "4096",
        "net.netfilter.nf_conntrack_buckets": "1024",
        "net.netfilter.nf_conntrack_tcp_timeout_time_wait": "30",
    }
    assert rules is None
    in_container, _ = tuner.phase_changes(sysctls_phase, "r1", include_global=False)
    assert set(in_container) == {"net.netfilter.nf_conntrack_tcp_timeout_time_wait"}
    assert phase_host_sysctls(sysctls_phase) == {
        "net.netfilter.nf_conntrack_max": "4096",
        "net.netfilter.nf_conntrack_buckets": "1024",
    }
    race = plan_phase(scn, next(p for p in scn.phases if p.name == "race"))
    s2, rules2 = tuner.phase_changes(race, "r1", include_global=False)
    assert s2 == {"net.netfilter.nf_conntrack_acct": "1"}
    assert rules2 is not None
    assert "numgen random mod 100 < 50 " in rules2
    assert rules2 == race_window_ruleset(50, "cth_race_r1")  # the one renderer
    assert "table inet cth_race_r1" in rules2


def test_tuner_refuses_other_sysctls() -> None:
    with pytest.raises(BadInput):
        tuner.daemonset(
            "r1", "ns", "node-tuner-x", sysctls={"kernel.panic": "1"}, nodes=NODES, image="i"
        )
    with pytest.raises(BadInput):
        tuner.daemonset(
            "r1",
            "ns",
            "node-tuner-x",
            sysctls={"net.netfilter.nf_conntrack_max": "1; rm -rf /"},
            nodes=NODES,
            image="i",
        )


@pytest.mark.skipif(shutil.which("sh") is None, reason="no /bin/sh")
def test_tuner_script_parses() -> None:
    subprocess.run(["sh", "-n", "-c", tuner.SCRIPT], check=True)


def test_host_sysctls_from_scenario() -> None:
    s = scenario(host={"nf_conntrack_max": 2048}, node_sysctls={"nf_conntrack_buckets": "auto"})
    assert run_host_sysctls(plan_run(s)) == {
        "net.netfilter.nf_conntrack_max": "2048",
        "net.netfilter.nf_conntrack_buckets": "1024",  # max/4, never below 1024
    }
    assert needs_host(plan_run(s))
    assert not needs_host(plan_run(scenario(phases=[{"name": "p"}])))


def test_kind_command_lines() -> None:
    assert commands.kind_create(
        "cth-r1", "/t/kind.yaml", "/t/kc", image="kindest/node:v1.36.4"
    ) == [
        "kind",
        "create",
        "cluster",
        "--name",
        "cth-r1",
        "--config",
        "/t/kind.yaml",
        "--kubeconfig",
        "/t/kc",
        "--wait",
        "0s",
        "--image",
        "kindest/node:v1.36.4",
    ]
    assert commands.kind_load_image("c", "img:glibc", ["c-worker"]) == [
        "kind",
        "load",
        "docker-image",
        "img:glibc",
        "--name",
        "c",
        "--nodes",
        "c-worker",
    ]
    assert commands.kind_delete("c", "/k") == [
        "kind",
        "delete",
        "cluster",
        "--name",
        "c",
        "--kubeconfig",
        "/k",
    ]
    with pytest.raises(BadInput):
        commands.kind_delete("c; rm", "/k")


def test_docker_and_kubectl_command_lines() -> None:
    assert commands.docker_exec("c-worker", ["id"]) == ["docker", "exec", "c-worker", "id"]
    argv = commands.kubectl_exec("/kc", "ns", "client-0", pod_worker_argv(), stdin=True)
    assert argv[:8] == [
        "kubectl",
        "--kubeconfig",
        "/kc",
        "--namespace",
        "ns",
        "exec",
        "-i",
        "client-0",
    ]
    assert argv[8:11] == ["--", "/bin/sh", "-c"]


def test_pod_worker_script_plan_in_result_out(tmp_path: Path) -> None:
    """The in-pod wrapper: stdin becomes --plan, --out's content is all that reaches stdout."""
    fake = tmp_path / "python3"
    fake.write_text(
        "#!/bin/sh\n"
        'echo "worker chatter"\n'
        'while [ $# -gt 0 ]; do case "$1" in --plan) p=$2;; --out) o=$2;; esac; shift; done\n'
        'printf \'{"echo": %s}\' "$(cat "$p")" > "$o"\n'
    )
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin"}
    done = subprocess.run(
        pod_worker_argv(),
        input='{"pod": "client-0"}',
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert json.loads(done.stdout) == {"echo": {"pod": "client-0"}}
    assert "worker chatter" in done.stderr


def _stat_text(rows: list[dict[str, int]]) -> str:
    header = list(rows[0])
    return "\n".join([" ".join(header)] + [" ".join(f"{r[h]:08x}" for h in header) for r in rows])


def test_parse_stat_sums_cpus_but_not_entries() -> None:
    rows = [
        {
            "entries": 300,
            "clashres": 5,
            "found": 1,
            "new": 0,
            "invalid": 2,
            "ignore": 0,
            "delete": 0,
            "delete_list": 0,
            "insert": 40,
            "insert_failed": 3,
            "drop": 11,
            "early_drop": 1,
            "icmp_error": 0,
            "expect_new": 0,
            "expect_create": 0,
            "expect_delete": 0,
            "search_restart": 0,
        },
        {
            "entries": 300,
            "clashres": 7,
            "found": 0,
            "new": 0,
            "invalid": 0,
            "ignore": 0,
            "delete": 0,
            "delete_list": 0,
            "insert": 2,
            "insert_failed": 4,
            "drop": 20,
            "early_drop": 0,
            "icmp_error": 0,
            "expect_new": 0,
            "expect_create": 0,
            "expect_delete": 0,
            "search_restart": 0,
        },
    ]
    stat = counters.parse_node_probe(_stat_text(rows) + "\n298\n2048\n")
    assert stat["entries"] == 300
    assert stat["count"] == 298
    assert stat["max"] == 2048
    assert stat["drop"] == 31
    assert stat["insert_failed"] == 7
    assert stat["insert"] == 42
    assert stat["clash_resolve"] == 12  # the kernel's header names it 'clashres'


def test_parse_this_hosts_stat_file() -> None:
    """The real file of this kernel parses (read-only; the header is the kernel's own)."""
    from pathlib import Path

    path = Path("/proc/net/stat/nf_conntrack")
    if not path.exists():
        pytest.skip("no nf_conntrack on this kernel")
    probe = path.read_text() + "\n10\n2048\n"
    assert counters.parse_node_probe(probe)["max"] == 2048


def test_odd_probe_output_is_a_backend_error() -> None:
    for text in ("hello", "entries drop\n1 2\n3\n10\n20", "drop\n0a\n0b\n10\n20"):
        with pytest.raises(BackendError):
            counters.parse_node_probe(text)


def test_the_tuner_adds_and_removes_an_interface() -> None:
    from harness.backends.kube import tuner as t
    from harness.backends.kube.placement import NodeMap

    nodes = NodeMap({"node-1": "w1"}, {"node-1": "w1"})
    ds = t.daemonset("r1", "ns", "node-tuner--nodelocal", sysctls={}, nodes=nodes, image="i",
                     link=("nodelocaldns", ["169.254.20.10", "10.96.0.10"]))  # fmt: skip
    env = {e["name"]: e["value"] for e in ds["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["LINK_BATCH"].splitlines() == [
        "link add nodelocaldns type bridge",
        "addr add 169.254.20.10/32 dev nodelocaldns",
        "addr add 10.96.0.10/32 dev nodelocaldns",
        "link set nodelocaldns up",
    ]
    add = t.SCRIPT.index("printf '%s' \"$LINK_BATCH\" | ip -b -")
    assert t.SCRIPT.index("trap restore TERM INT") < add < t.SCRIPT.index("touch /state/ready")
    restore = t.SCRIPT[t.SCRIPT.index("restore() {") : t.SCRIPT.index("trap restore")]
    assert 'ip link del "$LINK_NAME"' in restore
