"""A scenario's ``load.http: {locustfile: ...}`` as a :class:`LocustLoadPlan` (pure).

The raw client is the default HTTP load (maximum churn); a locustfile replaces it with the
user's own traffic pattern. Its users decide their connections, so the ``pooling``
remediation does not apply (the scenario model refuses the pair).
"""

from __future__ import annotations

from harness.plan.types import LocustLoadPlan
from harness.scenario.model import HTTPLoad

DEFAULT_USERS = 10


def plan_locust(http: HTTPLoad) -> LocustLoadPlan | None:
    """None when ``http`` drives the raw client."""
    if http.locustfile is None:
        return None
    users = http.users if http.users is not None else DEFAULT_USERS
    return LocustLoadPlan(
        locustfile=http.locustfile,
        users=users,
        spawn_rate=http.spawn_rate if http.spawn_rate is not None else float(users),
        user_classes=tuple(http.user_classes or ()),
    )
