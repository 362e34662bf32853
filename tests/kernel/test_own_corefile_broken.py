"""A broken user Corefile: `conntrack-harness run` exits 2 naming the file and quoting
CoreDNS's own error, and leaves nothing on the host."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.upstream import ComponentMissing, locate
from tests.kernel.conftest import HostSnapshot

pytestmark = pytest.mark.kernel

BROKEN = """.:53 {
    errors
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
    }
    prometheus :9153
    forward . /etc/resolv.conf
    no_such_plugin 30
}
"""

SCENARIO = """apiVersion: conntrack-harness/v1
kind: Scenario
name: broken-corefile
cluster:
  nodes: 2
  client_pods: 1
  coredns: {replicas: 1, corefile: broken.Corefile}
load:
  duration_s: 2
  http: null
  dns: {rate: 10}
phases:
  - name: only
"""


def test_broken_corefile_is_exit_2_with_coredns_error(
    tmp_path: Path, host_unchanged: HostSnapshot
) -> None:
    for b in ("kube-apiserver", "kube-proxy", "coredns", "etcd"):
        try:
            locate(b)
        except ComponentMissing as e:
            pytest.skip(f"upstream components not built yet: {e}")
    corefile = tmp_path / "broken.Corefile"
    corefile.write_text(BROKEN)
    (tmp_path / "broken.yaml").write_text(SCENARIO)
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "harness.cli", "run", str(tmp_path / "broken.yaml")),
            *("--report-dir", str(tmp_path / "reports"), "--wait", "300"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    err = proc.stderr
    assert proc.returncode == 2, err[-3000:]
    assert str(corefile) in err, err[-3000:]
    assert "cluster.coredns.corefile" in err
    # CoreDNS's own words: the directive it does not know, at its line in the user's file
    assert "Unknown directive 'no_such_plugin'" in err, err[-3000:]
    line = BROKEN.splitlines().index("    no_such_plugin 30") + 1
    assert f"{corefile}:{line} - Error during parsing" in err, err[-3000:]
