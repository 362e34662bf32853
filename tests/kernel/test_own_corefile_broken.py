"""A broken user Corefile: `conntrack-harness run` exits 2 naming the file and quoting
CoreDNS's own error, decided before the host lock (the test holds the lock meanwhile, and the
run does not wait for it), and leaves nothing on the host."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.kernel.journal import HostLock
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


def test_broken_corefile_is_exit_2_with_coredns_error(tmp_path: Path) -> None:
    try:
        locate("coredns")  # the only part the check needs: it runs before anything is built
    except ComponentMissing as e:
        pytest.skip(f"upstream components not built yet: {e}")
    corefile = tmp_path / "broken.Corefile"
    corefile.write_text(BROKEN)
    (tmp_path / "broken.yaml").write_text(SCENARIO)
    # the lock held here and --wait 0: a run that asked for it would be refused with "holds
    # the lock", so CoreDNS's error proves the Corefile was judged before the lock. The host
    # is compared while the lock is held (another run may change it before and after).
    with HostLock(wait_s=1800):
        before = HostSnapshot.take()
        proc = subprocess.run(
            [
                *(sys.executable, "-m", "harness.cli", "run", str(tmp_path / "broken.yaml")),
                *("--report-dir", str(tmp_path / "reports"), "--wait", "0"),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        leftovers = HostSnapshot.take().leftovers_since(before)
    assert leftovers == []
    err = proc.stderr
    assert proc.returncode == 2, err[-3000:]
    assert str(corefile) in err, err[-3000:]
    assert "cluster.coredns.corefile" in err
    # CoreDNS's own words: the directive it does not know, at its line in the user's file
    assert "Unknown directive 'no_such_plugin'" in err, err[-3000:]
    line = BROKEN.splitlines().index("    no_such_plugin 30") + 1
    assert f"{corefile}:{line} - Error during parsing" in err, err[-3000:]
    assert "holds" not in err, err[-3000:]  # not refused for the lock: it never asked
    assert len(err.strip().splitlines()) <= 2, err[-3000:]  # the banner, then one line
