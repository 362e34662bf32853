"""What an HTTP load run is asked to do (targets, plan) and what it measured (result).

Pure: validation, pacing arithmetic and accounting, no sockets. Field names follow
``harness.scenario.model.HTTPLoad`` and ``cthcommon.loadresult.HTTPResult``.
"""

from __future__ import annotations

import ipaddress
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypedDict, get_args

from cthcommon.errors import BadInput
from cthcommon.loadresult import HTTPResult, LatencyMs

Mode = Literal["short-lived", "server-close", "pooled"]
MODES: tuple[str, ...] = get_args(Mode)


@dataclass(frozen=True)
class HTTPTarget:
    """Where requests go, and from which namespace the sockets are made.

    ``netns`` is the client pod's namespace (None: this process's own namespace).
    """

    address: str
    port: int = 80
    path: str = "/"
    netns: str | None = None
    host: str | None = None  # the Host header; default: the address

    def __post_init__(self) -> None:
        try:
            ipaddress.IPv4Address(self.address)
        except ValueError:
            raise BadInput(
                "not an IPv4 address", field="target.address", value=self.address
            ) from None
        if not 0 < self.port < 65536:
            raise BadInput(field="target.port", value=self.port, allowed="1..65535")
        if not self.path.startswith("/"):
            raise BadInput("must start with '/'", field="target.path", value=self.path)

    @property
    def host_header(self) -> str:
        return self.host or (self.address if self.port == 80 else f"{self.address}:{self.port}")


class HTTPLoad(Protocol):
    """What :meth:`HTTPPlan.from_load` reads of a scenario's ``load.http`` section
    (``harness.scenario.model.HTTPLoad``)."""

    @property
    def mode(self) -> Mode: ...
    @property
    def rate(self) -> float: ...
    @property
    def pool_size(self) -> int: ...
    @property
    def connect_timeout_s(self) -> float: ...
    @property
    def max_in_flight(self) -> int: ...


@dataclass(frozen=True)
class HTTPPlan:
    """How hard and how: ``rate`` requests/s for ``duration_s`` in ``mode``.

    - short-lived: a new TCP connection per request; the client reads the response and
      closes first, so the client side holds TIME_WAIT;
    - server-close: a new connection per request with ``Connection: close``; the server
      closes first;
    - pooled: ``pool_size`` keep-alive connections, reopened only when one breaks.

    At most ``max_in_flight`` requests are outstanding; past that the generator waits,
    so the achieved rate can fall below ``rate`` (the result reports it).

    ``fill_connections`` (one-shot modes): the first that many requests start as fast as
    ``max_in_flight`` allows (the generator's maximum churn), then the run holds ``rate``
    from the moment the fill was issued. Every filled entry then has the full lifetime, so
    the table cannot turn over for one TIME_WAIT: a zero-turnover worst case, not a steady
    state. Phases do not use it; they warm up with ``harness.steady.warmup``.
    """

    mode: Mode = "short-lived"
    rate: float = 800.0
    duration_s: float = 10.0
    pool_size: int = 8
    connect_timeout_s: float = 2.0
    max_in_flight: int = 2000
    request_timeout_s: float = 5.0
    fill_connections: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise BadInput(field="plan.mode", value=self.mode, allowed=list(MODES))
        for name, value, lo, hi in (
            ("rate", self.rate, 0.0, 1_000_000.0),
            ("duration_s", self.duration_s, 0.0, 3600.0),
            ("connect_timeout_s", self.connect_timeout_s, 0.0, 60.0),
            ("request_timeout_s", self.request_timeout_s, 0.0, 120.0),
        ):
            if not (math.isfinite(value) and lo < value <= hi):
                raise BadInput(field=f"plan.{name}", value=value, allowed=f"({lo:g}, {hi:g}]")
        for name, ivalue in (("pool_size", self.pool_size), ("max_in_flight", self.max_in_flight)):
            if ivalue < 1:
                raise BadInput(field=f"plan.{name}", value=ivalue, allowed=">= 1")
        if self.fill_connections < 0:
            raise BadInput(
                field="plan.fill_connections", value=self.fill_connections, allowed=">= 0"
            )

    @classmethod
    def from_load(cls, load: HTTPLoad, duration_s: float) -> HTTPPlan:
        """The plan for a scenario's ``load.http`` section."""
        return cls(
            mode=load.mode,
            rate=load.rate,
            duration_s=duration_s,
            pool_size=load.pool_size,
            connect_timeout_s=load.connect_timeout_s,
            max_in_flight=load.max_in_flight,
        )


def due(elapsed_s: float, rate: float, duration_s: float) -> int:
    """How many requests an open-loop generator should have started ``elapsed_s`` in."""
    if elapsed_s <= 0:
        return 0
    return math.floor(min(elapsed_s, duration_s) * rate + 1e-9)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of an ascending list; 0 for an empty one."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(q / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(latencies_ms: list[float]) -> LatencyMs:
    ordered = sorted(latencies_ms)
    return LatencyMs(
        p50=percentile(ordered, 50),
        p90=percentile(ordered, 90),
        p99=percentile(ordered, 99),
        max=ordered[-1] if ordered else 0.0,
    )


class TimelineRow(TypedDict):
    t_s: int
    requests: int
    failures: int
    new_connections: int


@dataclass
class Accounting:
    """Counts as they happen; times are seconds since the run started."""

    requests: int = 0
    failures: int = 0
    new_connections: int = 0
    connect_failures: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    _per_s: dict[int, list[int]] = field(default_factory=dict)

    def _row(self, t_s: float) -> list[int]:
        return self._per_s.setdefault(max(0, int(t_s)), [0, 0, 0])

    def connection_opened(self, t_s: float) -> None:
        """A connect() was attempted: a SYN left, so a conntrack entry was created."""
        self.new_connections += 1
        self._row(t_s)[2] += 1

    def request_done(self, t_s: float, latency_ms: float, error: str | None) -> None:
        row = self._row(t_s)
        self.requests += 1
        row[0] += 1
        if error is None:
            self.latencies_ms.append(latency_ms)
            return
        self.failures += 1
        row[1] += 1
        self.errors[error] += 1
        if error.startswith("connect"):
            self.connect_failures += 1

    def timeline(self) -> list[TimelineRow]:
        if not self._per_s:
            return []
        last = max(self._per_s)
        return [
            TimelineRow(t_s=t, requests=r[0], failures=r[1], new_connections=r[2])
            for t in range(last + 1)
            for r in [self._per_s.get(t, [0, 0, 0])]
        ]


@dataclass(frozen=True)
class HTTPLoadResult:
    """What a run measured. ``new_connections`` counts connect() attempts (each one is a
    conntrack entry on the path, whether or not it succeeded)."""

    mode: Mode
    requests: int
    failures: int
    new_connections: int
    connect_failures: int
    elapsed_s: float
    latency_ms: LatencyMs
    latencies_ms: list[float]
    errors: dict[str, int]
    timeline: list[TimelineRow]
    fill_s: float | None = None  # when the fill_connections had all been started

    @property
    def failure_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def connections_per_s(self) -> float:
        return self.new_connections / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @classmethod
    def from_accounting(cls, mode: Mode, acc: Accounting, elapsed_s: float) -> HTTPLoadResult:
        return cls(
            mode=mode,
            requests=acc.requests,
            failures=acc.failures,
            new_connections=acc.new_connections,
            connect_failures=acc.connect_failures,
            elapsed_s=elapsed_s,
            latency_ms=latency_summary(acc.latencies_ms),
            latencies_ms=list(acc.latencies_ms),
            errors=dict(acc.errors),
            timeline=acc.timeline(),
        )

    def to_http_result(self) -> HTTPResult:
        """The ``phases[].http`` section of result.json."""
        return HTTPResult(
            mode=self.mode,
            requests=self.requests,
            failures=self.failures,
            failure_rate=self.failure_rate,
            new_connections=self.new_connections,
        )
