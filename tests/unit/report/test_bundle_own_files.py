"""The bundle keeps the files a scenario names (its Corefile, its locustfile) at the paths the
scenario gives, so the bundle's scenario.yaml loads and runs again from the bundle alone."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

import pytest

from harness.report.files import write_reports
from harness.results.schema import RunResult
from harness.scenario.loader import read_scenario
from harness.scenario.ownfiles import OUTSIDE, read_own_files

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def _scenario_dir(tmp_path: Path) -> Path:
    """A copy of the shipped Corefile and locustfile scenarios' own files, and a scenario
    that names both by relative paths."""
    d = tmp_path / "mine"
    shutil.copytree(ROOT / "scenarios" / "corefiles", d / "corefiles")
    shutil.copytree(ROOT / "scenarios" / "locustfiles", d / "locust")
    text = (ROOT / "scenarios" / "exhaustion-locust.yaml").read_text()
    text = text.replace("locustfiles/shop.py", "locust/shop.py")
    text = text.replace(
        "coredns: {replicas: 1}", "coredns: {replicas: 1, corefile: corefiles/seed000.Corefile}"
    )
    (d / "s.yaml").write_text(text)
    return d


def test_own_files_are_read_with_their_relative_paths(tmp_path: Path) -> None:
    d = _scenario_dir(tmp_path)
    scenario, _ = read_scenario(d / "s.yaml")
    files = read_own_files(scenario, d / "s.yaml")
    assert files == {
        "corefiles/seed000.Corefile": (d / "corefiles" / "seed000.Corefile").read_bytes(),
        "locust/shop.py": (d / "locust" / "shop.py").read_bytes(),
    }


def test_a_file_outside_the_scenario_dir_goes_under_its_own_folder(tmp_path: Path) -> None:
    d = _scenario_dir(tmp_path)
    shutil.move(d / "locust", tmp_path / "elsewhere")
    text = (d / "s.yaml").read_text().replace("locust/shop.py", "../elsewhere/shop.py")
    (d / "s.yaml").write_text(text)
    scenario, _ = read_scenario(d / "s.yaml")
    assert f"{OUTSIDE}/shop.py" in read_own_files(scenario, d / "s.yaml")


def test_the_bundled_scenario_loads_from_the_bundle_alone(
    tmp_path: Path, exhaustion: RunResult
) -> None:
    d = _scenario_dir(tmp_path)
    scenario, text = read_scenario(d / "s.yaml")
    files = read_own_files(scenario, d / "s.yaml")
    paths = write_reports(exhaustion, tmp_path / "rep", scenario_text=text, scenario_files=files)
    shutil.rmtree(d)  # the original files are gone: only the bundle is left
    out = tmp_path / "untar"
    with tarfile.open(paths[-1]) as tar:
        tar.extractall(out, filter="data")
    (root,) = out.iterdir()
    again, _ = read_scenario(root / "scenario.yaml")
    assert again.cluster.coredns.corefile == str(root / "corefiles" / "seed000.Corefile")
    assert again.load.http is not None
    assert again.load.http.locustfile == str(root / "locust" / "shop.py")
    assert "`corefiles/seed000.Corefile`" in (root / "README.md").read_text()
    # the report directory keeps them next to its scenario.yaml too
    assert read_scenario(tmp_path / "rep" / "scenario.yaml")[0].name == scenario.name
