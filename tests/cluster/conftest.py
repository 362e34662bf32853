"""Cluster tests (kind, the private dockerd, a real cluster): root, docker, the host lock.

They check the host the same way the kernel tests do, with the same fixtures. The marks every
module here starts from: ``NEEDS_DOCKER`` (root and docker.io) and ``KIND`` (those, unless
``CTH_KIND_TESTS=0`` skips the kind tests; they are part of `make test`)."""

from __future__ import annotations

import os
import shutil

import pytest

from harness.kindbuild import dockerd
from tests.kernel.conftest import HostSnapshot, host_unchanged, journal

__all__ = ["KIND", "NEEDS_DOCKER", "HostSnapshot", "host_unchanged", "journal"]

NEEDS_DOCKER = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(shutil.which(dockerd.DOCKERD) is None, reason="docker.io not installed"),
]
KIND = [
    *NEEDS_DOCKER,
    pytest.mark.skipif(os.environ.get("CTH_KIND_TESTS") == "0", reason="CTH_KIND_TESTS=0"),
]
