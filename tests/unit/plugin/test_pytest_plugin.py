"""The pytest plugin as a user meets it (issue 13 §6): --harness-wait, merged overrides,
the CLI's reports, skips reported at the test."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from harness.pytest_plugin import check_backend_option, deep_merge, scenario_data
from harness.scenario.loader import parse_scenario, read_yaml

pytest_plugins = ["pytester"]

ROOT = Path(__file__).parents[3]
EXHAUSTION = ROOT / "scenarios" / "exhaustion.yaml"
# HTTP at 500/s: not the model's default (800), so a reset to the default shows
SCENARIO = """\
apiVersion: conntrack-harness/v1
kind: Scenario
name: merge-check
load:
  duration_s: 20
  http: {mode: short-lived, rate: 500}
  dns: {rate: 100, names: [http-server]}
phases:
  - name: baseline
"""


@pytest.fixture
def scenario_file(tmp_path: Path) -> Path:
    f = tmp_path / "merge-check.yaml"
    f.write_text(SCENARIO)
    return f


def test_deep_merge_keeps_what_is_not_overridden() -> None:
    base = {"load": {"duration_s": 20, "http": {"rate": 500, "mode": "short-lived"}}}
    got = deep_merge(base, {"load": {"duration_s": 5, "http": {"rate": 100}}})
    assert got == {"load": {"duration_s": 5, "http": {"rate": 100, "mode": "short-lived"}}}
    assert base["load"]["duration_s"] == 20  # not changed in place
    assert deep_merge(base, {"load": {"http": None}})["load"]["http"] is None


def test_duration_override_keeps_the_files_http_rate(scenario_file: Path) -> None:
    s = parse_scenario(scenario_data(scenario_file, {"load": {"duration_s": 3}}, None)[0])
    assert s.load.duration_s == 3
    assert s.load.http is not None
    assert s.load.http.rate == 500  # the file's, not the model's default 800
    assert s.load.dns is not None
    assert s.load.dns.rate == 100


def test_override_can_drop_a_section(scenario_file: Path) -> None:
    s = parse_scenario(scenario_data(scenario_file, {"load": {"http": None}}, None)[0])
    assert s.load.http is None
    assert s.load.dns is not None


def test_repeat_override() -> None:
    s = parse_scenario(scenario_data(EXHAUSTION, {}, 3)[0])
    assert all(p.repeat == 3 for p in s.phases)


def test_harness_wait_is_validated(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    bad = pytester.runpytest("--harness-wait", "-5")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--harness-wait*seconds >= 0*'-5'*"])
    assert pytester.runpytest("--harness-wait", "2.5").ret == pytest.ExitCode.OK


def test_the_removed_k3s_backend_ends_the_session_as_bad_input(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(pytest.exit.Exception) as e:
        check_backend_option("k3s")
    assert e.value.returncode == 2  # bad input, as `conntrack-harness run --backend k3s` exits
    assert e.value.msg.startswith("--harness-backend: the k3s backend was removed: ")
    # end to end: a session of its own (pytest.exit in pytest_configure ends it before any test)
    pytester.makepyfile("def test_x():\n    pass\n")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # this checkout's plugin
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--harness-backend", "k3s")
    assert res.ret == 2
    res.stderr.fnmatch_lines(
        ["Exit: --harness-backend: the k3s backend was removed: *use kind or kubeconfig instead"]
    )
    assert "test_x" not in res.stdout.str()


def test_an_unknown_backend_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x():\n    pass\n")
    res = pytester.runpytest("--harness-backend", "nosuch")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    res.stderr.fnmatch_lines(["*unknown backend 'nosuch'; allowed: netns, kind, kubeconfig"])


def test_options_are_grouped_with_defaults(pytester: pytest.Pytester) -> None:
    out = pytester.runpytest("--help").stdout.str()
    section = out[out.index("conntrack-harness scenarios:") :]
    for opt in ("--harness-backend", "--harness-report-dir", "--harness-wait", "--harness-repeat"):
        assert opt in section
    wait_help = section[section.index("--harness-wait") :].split("--harness-", 2)[1]
    assert "Default: 0" in " ".join(wait_help.split())


def test_skip_points_at_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_kind_only="""
        import pytest

        @pytest.mark.harness_backends("kind")
        def test_on_kind():
            pass
        """
    )
    res = pytester.runpytest("-rs", "--harness-backend", "netns")
    res.assert_outcomes(skipped=1)
    res.stdout.fnmatch_lines(["SKIPPED [[]1[]] test_kind_only.py:3: runs on kind*"])
    assert "pytest_plugin.py" not in res.stdout.str()


_FAKE_RUNNER = """
import pytest
import harness.runner
from cthcommon.errors import LockHeld
from tests.sample_results import exhaustion_run

@pytest.fixture(autouse=True)
def fake_runner(monkeypatch):
    calls = []

    def run(scenario, **kw):
        calls.append((scenario, kw))
        if kw["wait_s"] < 0.5:
            raise LockHeld("another run holds the host lock; wait for it, or pass --wait SECONDS")
        r = exhaustion_run()
        r["command"] = kw["command"]
        if kw.get("report_dir") is not None:  # as the real run_scenario does
            from harness.report.files import write_reports

            write_reports(r, kw["report_dir"], scenario_text=kw.get("scenario_text"))
        return r

    monkeypatch.setattr(harness.runner, "run_scenario", run)
    return calls
"""


def _plugin_project(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(str(ROOT))
    pytester.makeconftest(_FAKE_RUNNER)
    pytester.makefile(".yaml", **{"merge-check": SCENARIO})
    pytester.makepyfile(
        test_scn="""
        def test_exhaustion(run_scenario, fake_runner):
            result = run_scenario("merge-check.yaml", load={"duration_s": 4})
            scenario, kw = fake_runner[0]
            assert scenario.load.duration_s == 4
            assert scenario.load.http.rate == 500
            assert result["phases"]
        """
    )


def test_report_dir_gets_the_clis_reports(pytester: pytest.Pytester, tmp_path: Path) -> None:
    _plugin_project(pytester)
    out = tmp_path / "reports"
    res = pytester.runpytest("--harness-report-dir", str(out), "--harness-wait", "1")
    res.assert_outcomes(passed=1)
    (d,) = out.iterdir()
    for name in (
        "result.json",
        "report.html",
        "summary.md",
        "junit.xml",
        "bundle.tar.gz",
        "metrics.prom",
        "scenario.yaml",
    ):
        assert (d / name).is_file(), name
    assert (d / "report.html").read_text().startswith("<!DOCTYPE html>")
    with tarfile.open(d / "bundle.tar.gz") as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/scenario.yaml"))
        f = tar.extractfile(member)
        assert f is not None
        kept = f.read().decode()
    data = read_yaml(kept)
    assert data["name"] == "merge-check"
    assert data["load"]["duration_s"] == 4  # the scenario as it ran
    assert data["load"]["http"]["rate"] == 500


def test_held_lock_advises_harness_wait(pytester: pytest.Pytester) -> None:
    _plugin_project(pytester)
    res = pytester.runpytest()
    res.assert_outcomes(failed=1)
    res.stdout.fnmatch_lines(["*pass --harness-wait SECONDS*"])
    assert "--wait SECONDS" not in res.stdout.str().replace("--harness-wait SECONDS", "")
