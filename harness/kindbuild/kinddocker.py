"""Which Docker daemon and which node image a kind run uses (``CTH_KIND_DOCKER``), decided
before the host lock, as part of the backend's preflight.

- ``auto`` (the default): when a Docker daemon answers ``docker info`` (``DOCKER_HOST``, else
  the default socket) and has kind's node image for the pinned release
  (``kindest/node:<versions.toml default>``, or the image ``CTH_KIND_NODE_IMAGE`` names),
  present or pulled now, that daemon and that image: no dockerd is started and no node image
  is built. Otherwise this project's private dockerd and a node image built here.
- ``system``: that daemon and that image, or the run stops before the lock: exit 3 when no
  daemon answers or the image can be neither found nor pulled.
- ``private``: always the private dockerd (air-gapped: nothing pulled).

Either way the choice and its reason are said in the progress lines and in result.json's
``environment.components`` (``docker``, ``kind-node-image``).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cthcommon.errors import BackendError, BadInput, CommandFailed, MissingTool
from harness.backends.kube import commands
from harness.backends.kube.proc import Runner, subprocess_runner
from harness.upstream import default_version

ENV = "CTH_KIND_DOCKER"
NODE_IMAGE_ENV = "CTH_KIND_NODE_IMAGE"
MODES = ("auto", "private", "system")
KINDEST_NODE = "kindest/node"
DEFAULT_SOCKET = "unix:///var/run/docker.sock"
EXTRA_KEY = "kind-docker"  # BackendOptions.extra: the preflight's Choice, as JSON
PULL_TIMEOUT_S = 900.0


def mode(environ: Mapping[str, str]) -> str:
    """``CTH_KIND_DOCKER``: ``auto`` (default), ``private`` or ``system``; else exit 2."""
    value = environ.get(ENV, "") or "auto"
    if value not in MODES:
        raise BadInput(
            "must be auto (the default), private or system",
            field=ENV,
            value=value,
            allowed=list(MODES),
        )
    return value


def pinned_node_image() -> str:
    """kind's published node image for the pinned release (versions.toml ``default``)."""
    return f"{KINDEST_NODE}:{default_version()}"


def daemon_address(environ: Mapping[str, str]) -> str:
    return environ.get("DOCKER_HOST") or DEFAULT_SOCKET


@dataclass(frozen=True)
class Choice:
    """The decision: which daemon, which node image, and why (said as it is)."""

    system: bool  # True: the daemon that answered; False: the private dockerd
    why: str  # the reason for this path
    docker: str  # "system (...)" or "private dockerd (why)"
    node_image: str | None  # the image kind creates the nodes from; None: built here
    node_image_note: str  # "kindest/node:v1.35.4 (present locally)" or "built here (why)"

    def lines(self) -> list[str]:
        return [f"docker: {self.docker}", f"node image: {self.node_image_note}"]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Choice:
        d = json.loads(text)
        return cls(
            system=bool(d["system"]),
            why=str(d["why"]),
            docker=str(d["docker"]),
            node_image=None if d["node_image"] is None else str(d["node_image"]),
            node_image_note=str(d["node_image_note"]),
        )


def private(why: str, named: str | None) -> Choice:
    if named:
        note = f"{named} (named by {NODE_IMAGE_ENV}, from the private dockerd)"
    else:
        note = f"built here from the pinned upstream binaries ({why})"
    return Choice(False, why, f"private dockerd ({why})", named, note)


def _docker_fails(e: Exception) -> str:
    if isinstance(e, CommandFailed):
        return e.stderr.strip().splitlines()[-1][-300:] if e.stderr.strip() else str(e)
    return str(e)


def _image_present(runner: Runner, image: str) -> bool:
    try:
        runner([commands.DOCKER, "image", "inspect", "--format", "{{.Id}}", image], timeout_s=60)
    except CommandFailed:
        return False
    return True


def choose(
    environ: Mapping[str, str] = os.environ,
    runner: Runner = subprocess_runner,
    *,
    pull_timeout_s: float = PULL_TIMEOUT_S,
    say: Callable[[str], None] | None = None,
) -> Choice:
    """Decide (see the module doc). Changes nothing on the host; may pull the node image
    into the daemon that answered. BadInput for a bad ``CTH_KIND_DOCKER``; BackendError when
    ``system`` is forced and cannot be had."""
    want = mode(environ)
    named = environ.get(NODE_IMAGE_ENV) or None
    if want == "private":
        return private(f"{ENV}=private", named)
    where = daemon_address(environ)
    if shutil.which(commands.DOCKER) is None:
        why = f"no docker CLI on PATH to ask a Docker daemon at {where}"
        if want == "system":
            raise MissingTool(f"{ENV}=system: {why}", tool=commands.DOCKER)
        return private(why, named)
    try:
        version = runner(commands.docker_info(), timeout_s=30).stdout.strip()
    except (CommandFailed, MissingTool) as e:
        why = f"no Docker daemon answers at {where}: `docker info`: {_docker_fails(e)}"
        if want == "system":
            raise BackendError(f"{ENV}=system, but {why}") from None
        return private(why, named)
    image = named or pinned_node_image()
    source = f"named by {NODE_IMAGE_ENV}" if named else "kind's node image for the pinned release"
    if _image_present(runner, image):
        how = "present locally"
    else:
        if say is not None:
            say(f"{image} is not in the Docker daemon at {where}: pulling it ({source})")
        try:
            runner([commands.DOCKER, "pull", image], timeout_s=pull_timeout_s)
        except CommandFailed as e:
            why = (
                f"the Docker daemon at {where} answers, but {image} ({source}) is not present "
                f"there and could not be pulled: {_docker_fails(e)}"
            )
            if want == "system":
                raise BackendError(f"{ENV}=system, but {why}") from None
            return private(why, named)
        how = "pulled now"
    why = f"{ENV}={want}: the Docker daemon at {where} answers and has {image}"
    docker = f"system (the Docker daemon at {where}, Docker {version}; {ENV}={want})"
    return Choice(True, why, docker, image, f"{image} ({source}, {how}; nothing built)")


def system_path_problems(components: Mapping[str, Any], node_image: str) -> list[str]:
    """What in a kind run's ``environment.components`` says it did not run on the system
    Docker with ``node_image`` (empty: it did). The kind workflow checks its runs with it."""
    problems = []
    docker = str((components.get("docker") or {}).get("source", ""))
    node = str((components.get("kind-node-image") or {}).get("source", ""))
    if ": system (" not in docker:
        problems.append(f"docker was not the system daemon: {docker or 'not recorded'}")
    if not node.startswith(f"{node_image} (") or "nothing built" not in node:
        problems.append(f"the node image was not {node_image}, as found: {node or 'not recorded'}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harness.kindbuild.kinddocker RESULT_JSON NODE_IMAGE``: exit 0 when the
    run took the system Docker with that node image, else 1 naming what it took instead."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m harness.kindbuild.kinddocker RESULT_JSON NODE_IMAGE")
        return 2
    result = json.loads(Path(args[0]).read_text())
    components = result.get("environment", {}).get("components", {})
    for name in ("docker", "kind-node-image", "kind"):
        print(f"{name}: {(components.get(name) or {}).get('source', 'not recorded')}")
    problems = system_path_problems(components, args[1])
    for p in problems:
        print(f"not the system path: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
