"""Every unit test gets a state directory of its own: nothing the host's runs recorded (their
journals, the cluster `conntrack-harness up` keeps) changes what a unit test sees.

Nor does the upstream cache: a `run` through the CLI builds the parts of its release the cache
lacks before the host lock (:mod:`harness.upstream.ondemand`). Found on an empty cache:
tests/unit/test_cli.py built CoreDNS and three Kubernetes binaries (354 MB, 44 s with a warm
Go build cache) and one failed on the build's progress lines. Here no unit test builds: the
on-demand step finds nothing to build, and making a part (a download or a Go build) fails the
test if reached (the builder's own tests replace it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.kernel.journal import STATE_DIR_ENV
from harness.upstream import build, ondemand


@pytest.fixture(autouse=True)
def _own_state_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    d = tmp_path_factory.mktemp("state")
    monkeypatch.setenv(STATE_DIR_ENV, str(d))
    return d


@pytest.fixture(autouse=True)
def _never_build_upstream(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("a unit test reached the upstream build (harness.upstream.build)")

    monkeypatch.setattr(build, "make", refuse)
    monkeypatch.setattr(ondemand, "ensure", lambda *_a, **_k: [])
