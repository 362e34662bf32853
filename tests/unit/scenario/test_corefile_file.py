"""Which file a scenario may name as its Corefile: inside the scenario's directory, a regular
UTF-8 text file of bounded size with a kubernetes plugin (exit 2 naming the field otherwise).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cthcommon.corefile import has_kubernetes_plugin
from cthcommon.errors import BadInput
from harness.scenario.corefile import MAX_COREFILE_BYTES
from harness.scenario.loader import parse_scenario

pytestmark = pytest.mark.unit

GOOD = ".:53 {\n    kubernetes cluster.local in-addr.arpa ip6.arpa\n    forward . 1.1.1.1\n}\n"
FIELD = "cluster.coredns.corefile"


def load(base: Path, corefile: str) -> str | None:
    data = {"name": "cf", "cluster": {"coredns": {"corefile": corefile}}, "phases": [{"name": "a"}]}
    return parse_scenario(data, base_dir=base).cluster.coredns.corefile


def refused(base: Path, corefile: str) -> str:
    with pytest.raises(BadInput) as e:
        load(base, corefile)
    assert e.value.field == FIELD
    assert e.value.exit_code == 2
    return str(e.value)


def test_relative_and_absolute_paths_inside_the_scenario_directory(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "Corefile").write_text(GOOD)
    want = str(tmp_path / "sub" / "Corefile")
    assert load(tmp_path, "sub/Corefile") == want
    assert load(tmp_path, want) == want  # absolute, but inside
    assert load(tmp_path / "sub", "../sub/Corefile") == want  # .. that stays inside


def test_paths_outside_the_scenario_directory_are_refused(tmp_path: Path) -> None:
    scen = tmp_path / "scen"
    scen.mkdir()
    outside = tmp_path / "Corefile"
    outside.write_text(GOOD)  # a perfectly good Corefile, but not the scenario's to name
    for value in (str(outside), "../Corefile", "/etc/passwd", "../../../../etc/passwd"):
        msg = refused(scen, value)
        assert f"inside the scenario file's directory {scen}" in msg
        assert "copy yours next to it" in msg


def test_a_symbolic_link_is_judged_by_where_it_points(tmp_path: Path) -> None:
    scen = tmp_path / "scen"
    scen.mkdir()
    (tmp_path / "real").write_text(GOOD)
    (scen / "escape").symlink_to(tmp_path / "real")
    assert "inside the scenario file's directory" in refused(scen, "escape")
    (scen / "real").write_text(GOOD)
    (scen / "inside").symlink_to(scen / "real")
    assert load(scen, "inside") == str(scen / "real")


def test_not_a_regular_file_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")  # reading it would block for ever
    assert "must be a regular file" in refused(tmp_path, "fifo")
    (tmp_path / "dir").mkdir()
    assert "must be a regular file" in refused(tmp_path, "dir")
    assert "not found" in refused(tmp_path, "missing")


def test_size_is_bounded_and_the_bound_is_said(tmp_path: Path) -> None:
    pad = "# " + "x" * 76 + "\n"
    big = GOOD + pad * (MAX_COREFILE_BYTES // len(pad))
    (tmp_path / "at").write_text(big[:MAX_COREFILE_BYTES])
    assert load(tmp_path, "at")
    (tmp_path / "over").write_text(big + "#\n")
    msg = refused(tmp_path, "over")
    assert f"at most {MAX_COREFILE_BYTES} bytes (64 KiB)" in msg


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (GOOD.encode() + b"\x00\x01", "control character"),
        (b"\xff\xfe" + GOOD.encode("utf-16-le"), "UTF-8 text"),
        (b"root:x:0:0:root:/root:/bin/bash\n", "no kubernetes plugin"),
        (
            b".:53 {\n    # kubernetes cluster.local\n    forward . 1.1.1.1\n}\n",
            "no kubernetes plugin",
        ),
    ],
)
def test_no_corefile_text_is_refused_without_quoting_it(
    tmp_path: Path, content: bytes, says: str
) -> None:
    (tmp_path / "f").write_bytes(content)
    msg = refused(tmp_path, "f")
    assert says in msg
    assert "root:x" not in msg  # the file's content is never quoted


def test_kubernetes_plugin_forms() -> None:
    assert has_kubernetes_plugin(GOOD)
    assert has_kubernetes_plugin(".:53 {\n  kubernetes {\n  }\n}\n")
    assert has_kubernetes_plugin(".:53 {\n\tkubernetes cluster.local # the cluster\n}\n")
    assert not has_kubernetes_plugin(".:53 {\n  kubernetes_like x\n  k8s_external x\n}\n")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("namespace", "Bad_NS!"),
        ("namespace", "-lead"),
        ("namespace", "trail-"),
        ("namespace", "a.b"),
        ("namespace", "a" * 64),
        ("namespace", ""),
        ("cluster_domain", ".."),
        ("cluster_domain", "cluster.local."),
        ("cluster_domain", "Cluster.local"),
        ("cluster_domain", "a..b"),
        ("cluster_domain", "x" * 254),
    ],
)
def test_namespace_and_cluster_domain_as_kubernetes_checks_them(field: str, value: str) -> None:
    data = {"name": "ns", "cluster": {field: value}, "phases": [{"name": "a"}]}
    with pytest.raises(BadInput) as e:
        parse_scenario(data)
    assert e.value.field == f"cluster.{field}"
    assert "RFC 1123" in str(e.value)
    assert "allowed: " in str(e.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("namespace", "a" * 63),
        ("namespace", "0-dns"),
        ("cluster_domain", "cluster.local"),
        ("cluster_domain", "my-corp.internal"),
        ("cluster_domain", ".".join(["a" * 62] * 4)),  # 251 characters
    ],
)
def test_valid_names_are_kept(field: str, value: str) -> None:
    data = {"name": "ns", "cluster": {field: value}, "phases": [{"name": "a"}]}
    assert getattr(parse_scenario(data).cluster, field) == value


def test_the_published_schema_carries_the_same_rules() -> None:
    import re

    from harness.scenario.loader import json_schema

    props = json_schema()["$defs"]["ClusterSpec"]["properties"]
    label, domain = props["namespace"], props["cluster_domain"]
    assert (label["maxLength"], domain["maxLength"]) == (63, 253)
    for value, ok_label, ok_domain in [
        ("default", True, True),
        ("cluster.local", False, True),
        ("Bad_NS!", False, False),
        ("..", False, False),
    ]:
        assert bool(re.match(label["pattern"], value)) is ok_label, value
        assert bool(re.match(domain["pattern"], value)) is ok_domain, value
