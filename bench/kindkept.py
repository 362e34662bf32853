"""A kind cluster kept between runs on "the user's" Docker, for the bench and the tests that
measure or compare runs on one (``bench.kind --kept``, ``tests/cluster/test_kind_equivalence``).

This project's dockerd is started as if it were the user's (its socket exported as
``DOCKER_HOST``), with the node image built here tagged under kind's own name for the pinned
release, so ``run --backend kind`` takes the system-Docker path. The runs get an environment
that names the cluster (``CTH_KIND_CLUSTER``) and keeps it (``CTH_KIND_KEEP``), with a lock
file and state directory of their own (the caller holds the host lock). At the end the
cluster is deleted, the tag removed and the dockerd stopped by PID with the project's code.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.kernel.journal import Journal
from harness.kindbuild import dockerd, kinddocker, kindnode
from harness.upstream import kindparts


@dataclass(frozen=True)
class KeptEnv:
    """The runs' environment, and "the user's" Docker daemon it names."""

    env: dict[str, str]
    docker: dockerd.Dockerd


@contextmanager
def kept_kind_env(
    journal: Journal, cluster: str, state: Path, *, named: bool = True
) -> Iterator[KeptEnv]:
    """The environment for ``run --backend kind`` on the kept cluster ``cluster``; lock file
    and state directory under ``state``. ``named`` False: the environment names no cluster
    (the caller keeps one with ``conntrack-harness up --name cluster``)."""
    with dockerd.running(journal) as user:
        pinned = kinddocker.pinned_node_image()
        user.cli("tag", kindnode.build(user), pinned)
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in (kinddocker.ENV, kinddocker.NODE_IMAGE_ENV)
        }
        env |= {
            "DOCKER_HOST": user.host,
            "CONNTRACK_HARNESS_LOCK": str(state / "run.lock"),
            "CONNTRACK_HARNESS_STATE_DIR": str(state / "run-state"),
        }
        if named:
            env |= {"CTH_KIND_CLUSTER": cluster, "CTH_KIND_KEEP": "1"}
        try:
            yield KeptEnv(env, user)
        finally:
            kind = shutil.which("kind") or str(kindparts.locate("kind") / "kind")
            subprocess.run(
                [kind, "delete", "cluster", "--name", cluster],
                env=env,
                capture_output=True,
                check=False,
                timeout=300,
            )
            user.cli("rmi", pinned)  # the tag added here (the image stays)
