"""The files a scenario names besides itself (its Corefile, its locustfiles), read once before
the run so that the reports and the bug bundle keep what ran, at the paths the scenario
gives: the bundle's ``scenario.yaml`` then finds them next to it when it is run again."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from harness.scenario.model import Scenario

# Where a file from outside the scenario's directory goes (the scenario names it by a path
# that leaves the directory, so the re-run needs it put back there by hand).
OUTSIDE = "scenario-files"


def named_files(scenario: Scenario) -> list[Path]:
    """Every file the scenario names, resolved (validation made the paths absolute), in
    order, each once."""
    paths: list[str] = []
    if scenario.cluster.coredns.corefile:
        paths.append(scenario.cluster.coredns.corefile)
    loads = [scenario.load, *(p.load for p in scenario.phases)]
    for load in loads:
        if load is not None and load.http is not None and load.http.locustfile:
            paths.append(load.http.locustfile)
    return [Path(p) for p in dict.fromkeys(paths)]


def bundle_path(path: Path, base_dir: Path) -> str:
    """The file's path relative to the scenario's directory (POSIX), or ``scenario-files/
    <name>`` for one outside it."""
    try:
        return PurePosixPath(path.resolve().relative_to(base_dir.resolve())).as_posix()
    except ValueError:
        return f"{OUTSIDE}/{path.name}"


def read_own_files(scenario: Scenario, scenario_file: str | Path) -> dict[str, bytes]:
    """``{path relative to the scenario: content}`` for every file the scenario names. A file
    that cannot be read now is left out (validation found it a moment ago; the run itself
    will say what is wrong with it)."""
    base = Path(scenario_file).parent
    out: dict[str, bytes] = {}
    for p in named_files(scenario):
        try:
            out[bundle_path(p, base)] = p.read_bytes()
        except OSError:
            continue
    return out
