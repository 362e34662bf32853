"""The private dockerd: a container on a kind-like network runs, and the host is left as found.

Root, and the kernel lock (``flock /run/cth-dev.lock``): dockerd is host-wide. Skipped when
docker.io is not installed. ~10 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.kernel.journal import Journal
from harness.kindbuild import dockerd, imagearchive, pause
from tests.cluster.conftest import NEEDS_DOCKER

pytestmark = NEEDS_DOCKER


def _save() -> str:
    out = subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout
    return "\n".join(ln for ln in out.splitlines() if not ln.startswith("#"))


def _links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


@pytest.fixture
def journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Journal]:
    monkeypatch.setenv("CONNTRACK_HARNESS_STATE_DIR", str(tmp_path / "state"))
    j = Journal.create("dockerdtest")
    yield j
    j.close()


def _pause_archive(tmp_path: Path) -> Path:
    _, binary = pause.build("v1.35.4")
    out = tmp_path / "pause.tar"
    spec = imagearchive.ImageSpec(
        tags=("registry.k8s.io/pause:test",), files={"/pause": binary}, entrypoint=("/pause",)
    )
    imagearchive.write_archive(spec, out)
    return out


def test_start_run_stop_leaves_host_as_found(journal: Journal, tmp_path: Path) -> None:
    archive = _pause_archive(tmp_path)
    rules, sysctls, links = _save(), dockerd.watched_sysctls(), _links()
    paths = dockerd.DockerdPaths.default()
    with dockerd.running(journal) as d:
        assert os.environ["DOCKER_HOST"] == paths.host
        assert shutil.which("docker") == str(paths.bin_dir / "docker")
        d.cli("load", "-i", str(archive))
        # kind's own network shape: a user bridge network the nodes share
        d.cli("network", "create", "-d", "bridge", "cth-test-net")
        cid = d.cli("run", "-d", "--network", "cth-test-net", "registry.k8s.io/pause:test").strip()
        ip = d.cli(
            "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", cid
        ).strip()
        assert ip.count(".") == 3
        assert d.cli("inspect", "-f", "{{.State.Running}}", cid).strip() == "true"
        d.cli("network", "disconnect", "-f", "cth-test-net", cid)
        d.cli("rm", "-f", cid)
        d.cli("network", "rm", "cth-test-net")
    assert "DOCKER_HOST" not in os.environ or os.environ["DOCKER_HOST"] != paths.host
    assert _save() == rules
    assert dockerd.watched_sysctls() == sysctls
    assert _links() == links
    assert dockerd._daemon_pids(paths) == []
    assert not dockerd.is_running(paths)


def test_dockers_filter_changes_are_undone(journal: Journal) -> None:
    """What dockerd does with its default flags (DOCKER chains, FORWARD DROP) is undone at
    stop, both by the running scope and by ``restore``'s journal replay."""
    rules = _save()
    with dockerd.running(journal):
        subprocess.run(["iptables", "-N", "DOCKER-USER"], check=True)
        subprocess.run(["iptables", "-A", "FORWARD", "-j", "DOCKER-USER"], check=True)
        subprocess.run(["iptables", "-P", "FORWARD", "DROP"], check=True)
    assert _save() == rules
    # a killed run: only the journal entry is left; restore's undo takes the changes out
    entry = next(e for e in journal.entries if e["op"] == "dockerd")
    try:
        subprocess.run(["iptables", "-N", "DOCKER"], check=True)
        subprocess.run(["iptables", "-A", "FORWARD", "-o", "docker0", "-j", "DOCKER"], check=True)
        subprocess.run(["iptables", "-P", "FORWARD", "DROP"], check=True)
        actions = dockerd.undo_entry(entry)
    finally:
        if _save() != rules:  # never leave the host changed, even if undo_entry is broken
            subprocess.run(["iptables", "-P", "FORWARD", "ACCEPT"], check=False)
            subprocess.run(
                ["iptables", "-D", "FORWARD", "-o", "docker0", "-j", "DOCKER"], check=False
            )
            subprocess.run(["iptables", "-X", "DOCKER"], check=False)
            if "*filter" not in rules:
                subprocess.run(["nft", "delete", "table", "ip", "filter"], check=False)
    assert _save() == rules
    assert any("iptables" in a for a in actions)


def test_foreign_rule_is_kept(journal: Journal) -> None:
    rules = _save()
    try:
        with dockerd.running(journal):
            subprocess.run(["iptables", "-N", "CTH-TESTKEEP"], check=True)
        assert "CTH-TESTKEEP" in _save()  # not docker's: left alone
    finally:
        subprocess.run(["iptables", "-X", "CTH-TESTKEEP"], check=False)
        if "*filter" not in rules:
            subprocess.run(["nft", "delete", "table", "ip", "filter"], check=False)
    assert _save() == rules
