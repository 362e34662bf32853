"""pytest plugin: run scenario files from tests, with grouped ``--harness-*`` options, a
terminal summary of every phase, and JUnit properties carrying the key figures.

A scenario test reads::

    @pytest.mark.scenario
    def test_exhaustion(run_scenario):
        result = run_scenario("scenarios/exhaustion.yaml")
        assert_expectations(result)
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from harness.results.schema import RunResult

_RESULTS: list[RunResult] = []


def _positive_int(text: str) -> int:
    n = int(text)
    if n < 1:
        raise ValueError("must be >= 1")
    return n


def _seconds(text: str) -> float:
    """A wait in seconds: a finite number >= 0 (argparse shows the error)."""
    try:
        n = float(text)
    except ValueError:
        n = -1.0
    if not 0 <= n < float("inf"):
        raise argparse.ArgumentTypeError(f"a number of seconds >= 0 is needed, not {text!r}")
    return n


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` laid over it: mappings merge key by key, anything else
    (numbers, lists, null) replaces. ``load={"duration_s": 5}`` keeps the file's HTTP rate."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("conntrack-harness", "conntrack-harness scenarios")
    g.addoption(
        "--harness-backend",
        default="netns",
        metavar="{netns,kind,kubeconfig}",
        help="Backend that realizes scenarios. Default: netns",
    )
    g.addoption(
        "--harness-report-dir",
        default=None,
        metavar="DIR",
        help="Write each scenario's reports (result.json, report.html, summary.md, junit.xml, "
        "bundle.tar.gz, metrics.prom) under DIR/<scenario>/, as `conntrack-harness run "
        "--report-dir` does. Default: the test's tmp_path",
    )
    g.addoption(
        "--harness-wait",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="Wait up to SECONDS for another run's host lock instead of failing. Default: 0",
    )
    g.addoption(
        "--harness-keep-cluster",
        action="store_true",
        default=False,
        help="Keep a kind cluster after the session. Default: delete it",
    )
    g.addoption(
        "--harness-repeat",
        type=_positive_int,
        default=None,
        metavar="N",
        help="Override every phase's repeat count. Default: the scenario's own",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "scenario: a full scenario run on a backend (slow)")
    config.addinivalue_line(
        "markers",
        "harness_backends(*names): run only on these backends (netns, kind, kubeconfig)",
    )
    if not config.getoption("help"):  # --help shows the options whatever the backend
        check_backend_option(config.getoption("--harness-backend"))


def check_backend_option(backend: str) -> None:
    """``--harness-backend``: a removed backend ends the session with its reason and exit 2
    (bad input, as ``conntrack-harness run`` exits); an unknown one is a usage error."""
    if backend == "netns":
        return  # the default: no need to import the backends
    from harness.backends.registry import BACKENDS, REMOVED_BACKENDS

    if backend in REMOVED_BACKENDS:
        pytest.exit(f"--harness-backend: {REMOVED_BACKENDS[backend]}", returncode=2)
    if backend not in BACKENDS:
        raise pytest.UsageError(
            f"--harness-backend: unknown backend {backend!r}; allowed: {', '.join(BACKENDS)}"
        )


def pytest_runtest_setup(item: pytest.Item) -> None:
    marker = item.get_closest_marker("harness_backends")
    if marker is None:
        return
    from harness.backends.registry import BACKENDS

    bad = [b for b in marker.args if b not in BACKENDS]
    if bad or marker.kwargs or not marker.args:
        raise pytest.UsageError(
            f"{item.nodeid}: @pytest.mark.harness_backends takes backend names "
            f"{list(BACKENDS)} as positional arguments (got {marker.args}, {marker.kwargs})"
        )
    backend = item.config.getoption("--harness-backend")
    if backend not in marker.args:
        # reported at the test, not here (as pytest's own skip markers are)
        raise pytest.skip.Exception(
            f"runs on {', '.join(marker.args)}; this session uses {backend}",
            _use_item_location=True,
        )


class SessionPool:
    """Realized clusters kept for the whole pytest session, one per scenario file."""

    def __init__(self, backend: str, options: Any, wait_s: float = 0.0) -> None:
        self.backend = backend
        self.options = options
        self.wait_s = wait_s
        self._sessions: dict[str, Any] = {}

    def get(self, path: str | Path) -> Any:
        from harness.runner import ClusterSession
        from harness.scenario.loader import load_scenario

        key = str(Path(path).resolve())
        if key not in self._sessions:
            session = ClusterSession(
                load_scenario(path), backend=self.backend, options=self.options, wait_s=self.wait_s
            )
            with _lock_advice():
                session.__enter__()
            self._sessions[key] = session
        return self._sessions[key]

    def close(self) -> None:
        errors = []
        while self._sessions:
            _, session = self._sessions.popitem()
            try:
                session.__exit__(None, None, None)
            except Exception as e:  # close the others, then be loud
                errors.append(e)
        if errors:
            raise errors[0]


_POOL: SessionPool | None = None


@pytest.fixture(scope="session")
def harness_sessions(request: pytest.FixtureRequest) -> Iterator[SessionPool]:
    """Expensive tier: clusters built on first use and torn down when the session ends."""
    from harness.backends.base import BackendOptions

    global _POOL
    cfg = request.config
    _POOL = SessionPool(
        cfg.getoption("--harness-backend"),
        BackendOptions(keep_cluster=cfg.getoption("--harness-keep-cluster")),
        wait_s=cfg.getoption("--harness-wait"),
    )
    try:
        yield _POOL
    finally:
        _POOL.close()
        _POOL = None


@pytest.fixture
def harness_cluster(harness_sessions: SessionPool) -> Callable[[str | Path], Any]:
    """Cheap tier: the session's cluster for a scenario file, with its conntrack tables
    flushed so the test starts from an empty table. Returns a ``ClusterSession``: call
    ``run_phase(phase)`` on it."""

    def get(path: str | Path) -> Any:
        session = harness_sessions.get(path)
        session.reset()
        return session

    return get


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Last safety net: a pool left open by an aborted session is closed here."""
    if _POOL is not None:
        _POOL.close()


RunScenario = Callable[..., RunResult]


@contextlib.contextmanager
def _lock_advice() -> Iterator[None]:
    """A held host lock fails the test with the option pytest has (not the CLI's --wait)."""
    from cthcommon.errors import LockHeld

    try:
        yield
    except LockHeld as e:
        msg = str(e).replace("--wait SECONDS", "--harness-wait SECONDS")
        if "--harness-wait" not in msg:
            msg += " (pass --harness-wait SECONDS to wait for it)"
        # from None: the CLI's advice must not show as the cause
        raise pytest.fail.Exception(msg, pytrace=False) from None


def scenario_data(
    path: str | Path, overrides: Mapping[str, Any], repeat: int | None
) -> tuple[Any, str]:
    """The scenario file as YAML data with ``overrides`` deep-merged in (and every phase's
    ``repeat`` set, when given), and the file's text. The file is read once and validated
    first, so its own errors name it."""
    from harness.scenario.loader import read_scenario, read_yaml

    _, text = read_scenario(path)
    data = deep_merge(read_yaml(text), overrides)
    if repeat:
        data["phases"] = [{**ph, "repeat": repeat} for ph in data["phases"]]
    return data, text


@pytest.fixture
def run_scenario(request: pytest.FixtureRequest, tmp_path: Path) -> RunScenario:
    """Run a scenario file and return its result.json. Keyword arguments are merged into the
    file (``load={"duration_s": 5}`` changes the duration and keeps the rest of its load).
    Every run writes the CLI's reports, under ``--harness-report-dir`` or ``tmp_path``."""
    import yaml

    from harness.metrics.prometheus import HarnessMetrics
    from harness.runner import run_scenario as _run
    from harness.scenario.loader import parse_scenario

    cfg = request.config

    def run(path: str | Path, **overrides: Any) -> RunResult:
        repeat = cfg.getoption("--harness-repeat")
        data, text = scenario_data(path, overrides, repeat)
        scenario = parse_scenario(data, source=str(path))
        if overrides or repeat:
            text = f"# {path} with the test's overrides\n" + yaml.safe_dump(data, sort_keys=False)
        report_root = cfg.getoption("--harness-report-dir")
        report_dir = Path(report_root) / scenario.name if report_root else tmp_path / "report"
        report_dir.mkdir(parents=True, exist_ok=True)
        backend = cfg.getoption("--harness-backend")
        with _lock_advice():
            result = _run(
                scenario,
                scenario_file=str(path),
                backend=backend,
                report_dir=report_dir,
                wait_s=cfg.getoption("--harness-wait"),
                command=shlex.join(["pytest", request.node.nodeid, "--harness-backend", backend]),
                scenario_text=text,  # run_scenario writes every report, evidence and bundle
            )
        metrics = HarnessMetrics()  # the CLI's metrics.prom, from the finished run
        metrics.load_result(result)
        metrics.write_textfile(report_dir / "metrics.prom")
        _RESULTS.append(result)
        for p in result["phases"]:
            d = p["dns"]
            prefix = f"{p['name']}{'.injected' if p['injected'] else ''}"
            request.node.user_properties += [
                (f"{prefix}.lookups", d["lookups"]),
                (f"{prefix}.timeout_rate", d["timeout_rate"]),
                (f"{prefix}.conntrack_drop", p["conntrack"]["drop"]),
                (f"{prefix}.verdict", p["verdict"]),
            ]
        return result

    return run


def assert_expectations(result: RunResult) -> None:
    """Fail the test with every violated expectation, phase by phase; and, when they all held,
    with every inconclusive phase (not measured in its load's steady state: the reason and
    what would make it conclusive), as ``conntrack-harness run`` exits 6 on it."""
    from harness.judge.gate import inconclusive_reasons

    bad = [
        f"{p['name']}: {e['expect']} (observed {e['observed']})"
        for p in result["phases"]
        for e in p["expectations"]
        if not e["ok"]
    ]
    assert not bad, "expectations violated:\n  " + "\n  ".join(bad)
    unsure = inconclusive_reasons(result["phases"])
    assert not unsure, "inconclusive (not measured in steady state):\n  " + "\n  ".join(unsure)


def pytest_sessionstart(session: pytest.Session) -> None:
    _RESULTS.clear()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _RESULTS:
        return
    from harness.report import render_plain_table

    tr = terminalreporter
    tr.section("conntrack-harness")
    for result in _RESULTS:
        for line in render_plain_table(result).splitlines():
            tr.write_line(line)
