"""The plan for running a user's own locustfile (``python -m loadgen.locust.userrun``).

Locust-free and validated before any I/O. The user classes come from the file; the harness
only says how many users, where they run and what they target (Locust's ``--host``).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cthcommon.errors import BadInput
from loadgen.locust.plan import _ipv4, plan_fields

MAX_USERS = 1000
MAX_WORKERS = 64


@dataclass(frozen=True)
class LocustfilePlan:
    """One run of ``locustfile``.

    - ``host``/``port``: the target every user class gets as its ``host`` (the http-server
      Service's ClusterIP on a cluster);
    - ``user_classes``: names of User classes in the file (empty: all of them);
    - ``workers``: 0 runs in one process; N > 0 runs a master and N worker processes,
      worker i inside ``worker_netns[i]`` when given, reaching the master at ``master_host``.
    """

    locustfile: str
    host: str
    port: int = 80
    users: int = 10
    spawn_rate: float = 10.0
    duration_s: float = 10.0
    user_classes: tuple[str, ...] = ()
    workers: int = 0
    worker_netns: tuple[str, ...] = field(default_factory=tuple)
    master_host: str | None = None
    master_port: int = 0

    def __post_init__(self) -> None:
        path = Path(self.locustfile)
        if not path.is_absolute() or path.suffix != ".py":
            raise BadInput(
                "an absolute path to a Python file", field="locustfile", value=self.locustfile
            )
        _ipv4("host", self.host)
        if not 0 < self.port < 65536:
            raise BadInput(field="port", value=self.port, allowed="1..65535")
        if not 1 <= self.users <= MAX_USERS:
            raise BadInput(field="users", value=self.users, allowed=f"1..{MAX_USERS}")
        for name, value in (("spawn_rate", self.spawn_rate), ("duration_s", self.duration_s)):
            if not (math.isfinite(value) and value > 0):
                raise BadInput(field=name, value=value, allowed="> 0")
        if not 0 <= self.workers <= MAX_WORKERS:
            raise BadInput(field="workers", value=self.workers, allowed=f"0..{MAX_WORKERS}")
        if self.worker_netns and len(self.worker_netns) != self.workers:
            raise BadInput(
                "give one namespace per worker, or none",
                field="worker_netns",
                value=list(self.worker_netns),
                allowed=f"a list of {self.workers} names",
            )
        if self.workers > self.users:
            raise BadInput(
                "more workers than users: a worker would run none",
                field="workers",
                value=self.workers,
                allowed=f"<= users ({self.users})",
            )
        if self.master_host is not None:
            _ipv4("master_host", self.master_host)
        elif self.worker_netns:
            raise BadInput(
                "workers in other namespaces need the master's address", field="master_host"
            )
        if not 0 <= self.master_port < 65536:
            raise BadInput(field="master_port", value=self.master_port, allowed="0..65535")

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LocustfilePlan:
        data = plan_fields(text, set(cls.__dataclass_fields__), required=("locustfile", "host"))
        for name in ("user_classes", "worker_netns"):
            if name in data:
                data[name] = tuple(data[name])
        try:
            return cls(**data)
        except TypeError as e:
            raise BadInput(str(e), field="plan-json") from None
