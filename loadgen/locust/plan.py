"""The plan handed to ``python -m loadgen.locust.run`` as JSON, validated before any I/O."""

from __future__ import annotations

import ipaddress
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

from cthcommon.errors import BadInput
from loadgen.locust.schedule import Schedule, schedule_from_dict

UserKind = Literal["short-lived", "server-close", "pooled"]
USER_KINDS: tuple[str, ...] = get_args(UserKind)


def _ipv4(field_name: str, value: str) -> None:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        raise BadInput("not an IPv4 address", field=field_name, value=value) from None


@dataclass(frozen=True)
class LocustPlan:
    """One Locust run.

    - ``user``: which user class (short-lived: client closes first; server-close;
      pooled: users share ``pool_size`` keep-alive connections);
    - ``users`` / ``spawn_rate``: concurrency, when no ``shape`` drives it. A pooled user
      holds one keep-alive connection, so pooled runs ``pool_size`` users;
    - ``rate``: total requests/s across ``effective_users`` (None: as fast as each user
      can). A shape changes the user count, and the total rate scales with it;
    - ``workers``: 0 runs in one process; N > 0 runs a master and N worker processes,
      worker i inside ``worker_netns[i]`` when given. Workers reach the master at
      ``master_host`` (default 127.0.0.1 when the workers share the master's namespace).
    """

    host: str
    user: UserKind = "short-lived"
    port: int = 80
    path: str = "/"
    users: int = 10
    spawn_rate: float | None = None
    rate: float | None = None
    duration_s: float = 10.0
    pool_size: int = 8
    connect_timeout_s: float = 2.0
    request_timeout_s: float = 5.0
    shape: dict[str, Any] | None = None
    workers: int = 0
    worker_netns: list[str] = field(default_factory=list)
    master_host: str | None = None
    master_port: int = 0

    def __post_init__(self) -> None:
        _ipv4("host", self.host)
        if self.user not in USER_KINDS:
            raise BadInput(field="user", value=self.user, allowed=list(USER_KINDS))
        if not self.path.startswith("/"):
            raise BadInput("must start with '/'", field="path", value=self.path)
        if not 0 < self.port < 65536:
            raise BadInput(field="port", value=self.port, allowed="1..65535")
        if self.users < 1:
            raise BadInput(field="users", value=self.users, allowed=">= 1")
        for name, value in (
            ("spawn_rate", self.spawn_rate),
            ("rate", self.rate),
            ("duration_s", self.duration_s),
            ("connect_timeout_s", self.connect_timeout_s),
            ("request_timeout_s", self.request_timeout_s),
        ):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise BadInput(field=name, value=value, allowed="> 0")
        if self.pool_size < 1:
            raise BadInput(field="pool_size", value=self.pool_size, allowed=">= 1")
        if not 0 <= self.workers <= 64:
            raise BadInput(field="workers", value=self.workers, allowed="0..64")
        if self.worker_netns and len(self.worker_netns) != self.workers:
            raise BadInput(
                "give one namespace per worker, or none",
                field="worker_netns",
                value=self.worker_netns,
                allowed=f"a list of {self.workers} names",
            )
        for ns in self.worker_netns:
            if not ns.startswith("cth-"):
                raise BadInput(
                    "harness namespaces start with 'cth-'", field="worker_netns", value=ns
                )
        if self.master_host is not None:
            _ipv4("master_host", self.master_host)
        elif self.worker_netns:
            raise BadInput(
                "workers in other namespaces need the master's address",
                field="master_host",
                value=None,
            )
        if not 0 <= self.master_port < 65536:
            raise BadInput(field="master_port", value=self.master_port, allowed="0..65535")
        self.schedule()  # validate the shape now, not inside the subprocess

    def schedule(self) -> Schedule | None:
        return schedule_from_dict(self.shape) if self.shape is not None else None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def effective_users(self) -> int:
        return self.pool_size if self.user == "pooled" else self.users

    @property
    def effective_spawn_rate(self) -> float:
        return self.spawn_rate if self.spawn_rate is not None else float(self.effective_users)

    def per_user_rate(self) -> float | None:
        """Requests/s per user, so that ``effective_users`` together make ``rate``."""
        return None if self.rate is None else self.rate / self.effective_users

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> LocustPlan:
        return cls(**plan_fields(text, set(cls.__dataclass_fields__), required=("host",)))


def plan_fields(text: str, known: set[str], *, required: tuple[str, ...]) -> dict[str, Any]:
    """A plan's JSON text as keyword arguments: an object, only ``known`` keys, ``required``
    ones present; anything else is bad input."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"not JSON: {e}", field="plan-json") from None
    if not isinstance(data, dict):
        raise BadInput("must be a JSON object", field="plan-json", value=type(data).__name__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise BadInput("unknown fields", field="plan-json", value=unknown, allowed=sorted(known))
    for name in required:
        if name not in data:
            raise BadInput("is required", field=name)
    return data
