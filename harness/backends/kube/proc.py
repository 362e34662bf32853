"""Run CLI commands (kind, kubectl, docker): one small seam, so tests substitute a fake."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cthcommon.errors import CommandFailed, MissingTool


@dataclass(frozen=True)
class Completed:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str


class Runner(Protocol):
    def __call__(
        self,
        argv: Sequence[str],
        *,
        input: str | None = None,
        timeout_s: float = 600,
        check: bool = True,
    ) -> Completed: ...


def subprocess_runner(
    argv: Sequence[str], *, input: str | None = None, timeout_s: float = 600, check: bool = True
) -> Completed:
    args = list(argv)
    if shutil.which(args[0]) is None:
        raise MissingTool(f"{args[0]} is not on PATH", tool=args[0])
    try:
        p = subprocess.run(
            args, input=input, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as e:
        raise CommandFailed(args, -1, f"timed out after {timeout_s}s") from e
    done = Completed(args, p.returncode, p.stdout, p.stderr)
    if check and p.returncode != 0:
        raise CommandFailed(args, p.returncode, p.stderr)
    return done


def pipe(first: Sequence[str], second: Sequence[str], timeout_s: float = 600) -> None:
    """``first | second``, both checked (used for docker save | ctr import)."""
    for tool in (first[0], second[0]):
        if shutil.which(tool) is None:
            raise MissingTool(f"{tool} is not on PATH", tool=tool)
    with subprocess.Popen(list(first), stdout=subprocess.PIPE, stderr=subprocess.PIPE) as a:
        b = subprocess.run(
            list(second), stdin=a.stdout, capture_output=True, timeout=timeout_s, check=False
        )
        if a.stdout is not None:
            a.stdout.close()
        a_err = a.stderr.read().decode() if a.stderr is not None else ""
        a.wait(timeout=timeout_s)
    if a.returncode != 0:
        raise CommandFailed(list(first), a.returncode, a_err)
    if b.returncode != 0:
        raise CommandFailed(list(second), b.returncode, b.stderr.decode())


@contextlib.contextmanager
def environ_set(values: Mapping[str, str]) -> Iterator[None]:
    """These environment variables for the block (the docker and kind CLIs read DOCKER_HOST
    and PATH), then each put back as it was, unset included."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def kubectl_dir() -> Path | None:
    """Where kubectl comes from when PATH has none: the pinned one the upstream build made
    (``ComponentMissing``, exit 2 with the command to build it, when that is missing too).
    None: PATH has one, which is used."""
    if shutil.which("kubectl") is not None:
        return None
    from harness.upstream import locate

    return locate("kubectl").parent
