"""A scenario's ``load.http: {locustfile: ...}`` as a :class:`LocustLoadPlan` (pure).

The raw client is the default HTTP load (maximum churn); a locustfile replaces it with the
user's own traffic pattern. The connection behaviour is then the locustfile's to decide, so
the ``pooling`` remediation (which switches the raw client to keep-alive) cannot apply.
"""

from __future__ import annotations

from harness.errors import BadInput
from harness.plan.types import LocustLoadPlan
from harness.scenario.model import HTTPLoad

DEFAULT_USERS = 10


def plan_locust(http: HTTPLoad, *, pooling: int | None, where: str) -> LocustLoadPlan | None:
    """None when ``http`` drives the raw client; ``where`` names the phase for errors."""
    if http.locustfile is None:
        return None
    if pooling is not None:
        raise BadInput(
            "pooling switches the raw client to keep-alive; a locustfile load decides its own "
            "connections (use a keep-alive user class in the locustfile instead)",
            field=f"{where}.remediations",
            value="pooling",
        )
    users = http.users if http.users is not None else DEFAULT_USERS
    return LocustLoadPlan(
        locustfile=http.locustfile,
        users=users,
        spawn_rate=http.spawn_rate if http.spawn_rate is not None else float(users),
        user_classes=tuple(http.user_classes or ()),
    )
