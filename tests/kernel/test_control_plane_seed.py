"""The kept empty control plane (issue 19 item 4): the first start with a new key makes it,
the next starts from a copy of it; a run's objects never reach it, every run gets its own etcd
data and processes, and nothing is left on the host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.backends.netns.k8s import seed as S
from harness.backends.netns.k8s.controlplane import BINARIES, ControlPlane, ControlPlaneConfig
from harness.kernel.journal import HostLock, Journal
from harness.upstream import ComponentMissing, locate
from tests.kernel.conftest import HostSnapshot

pytestmark = [pytest.mark.kernel, pytest.mark.apiserver]

MADE = "kept control plane made"


@pytest.fixture
def seeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    try:
        for b in BINARIES:
            locate(b)
    except ComponentMissing as e:
        pytest.skip(str(e))
    d = tmp_path / "seeds"
    monkeypatch.setattr(S, "seeds_dir", lambda: d)  # an empty cache of our own
    monkeypatch.setenv("CONNTRACK_HARNESS_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "state").mkdir()
    return d


def configmap(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": "default"},
        "data": {"k": "v"},
    }


def test_first_start_makes_the_kept_plane_and_the_next_starts_from_a_copy(
    seeds: Path, tmp_path: Path
) -> None:
    seen: list[dict[str, float]] = []
    etcd_dirs: list[Path] = []
    pids: list[set[int]] = []
    with HostLock(wait_s=1800):
        before = HostSnapshot.take()  # under the lock: another run's changes are undone
        for i in range(2):
            j = Journal.create(os.urandom(3).hex())
            cfg = ControlPlaneConfig(run_id=j.run_id, ns=f"cth-{j.run_id}-cp")
            with ControlPlane(cfg, j, tmp_path / "state" / j.run_id) as cp:
                assert cp.seeded
                seen.append(dict(cp.timings.marks))
                etcd_dirs.append(cp.dir / "etcd")
                pids.append({p.pid for p in cp.procs.values()})
                with cp.client() as c:
                    # this run's object is its own: the next run never sees it
                    assert c.get("v1", "ConfigMap", "run-0", "default") is None
                    c.create(configmap(f"run-{i}"))
                    assert c.get("v1", "ServiceAccount", "default", "default") is not None
                    status, _ = c.raw("GET", "/readyz")
                    assert status == 200
            j.close()
        leftovers = HostSnapshot.take().leftovers_since(before)
    assert not leftovers, leftovers
    assert MADE in seen[0]
    assert MADE not in seen[1]
    entries = [d for d in seeds.iterdir() if not d.name.startswith(".")]
    assert len(entries) == 1
    assert S.lookup(entries[0].name) == entries[0]
    assert etcd_dirs[0] != etcd_dirs[1]
    assert not etcd_dirs[1].exists()
    assert not pids[0] & pids[1]


def test_without_the_kept_plane_the_start_is_from_nothing(seeds: Path, tmp_path: Path) -> None:
    with HostLock(wait_s=1800):
        j = Journal.create(os.urandom(3).hex())
        cfg = ControlPlaneConfig(run_id=j.run_id, ns=f"cth-{j.run_id}-cp", use_seed=False)
        with ControlPlane(cfg, j, tmp_path / "state" / j.run_id) as cp:
            assert not cp.seeded
            assert MADE not in cp.timings.marks
        j.close()
    assert not seeds.exists()
