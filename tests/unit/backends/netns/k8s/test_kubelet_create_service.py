"""A Service that pins its ClusterIP while kube-apiserver's allocator has not loaded the
Service range yet: retried until it is, and no other refusal is retried (no root)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import pytest

from harness.backends.netns.k8s.kubelet import ALLOCATOR_NOT_LOADED, Kubelet, kube_dns_service
from harness.kubeapi.client import ApiClient, ApiError

pytestmark = pytest.mark.unit

NOT_LOADED = {
    "reason": "Invalid",
    "message": f'Service "kube-dns" is invalid: spec.clusterIPs: Invalid value: '
    f'["10.96.0.10"]: failed to allocate IP 10.96.0.10: {ALLOCATOR_NOT_LOADED}',
}


class Refusing:
    """A client whose first creates are refused with ``refusals`` in turn."""

    def __init__(self, refusals: list[tuple[int, Mapping[str, Any]]]) -> None:
        self.refusals = list(refusals)
        self.calls = 0

    def create(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        self.calls += 1
        if self.refusals:
            status, body = self.refusals.pop(0)
            raise ApiError("create Service/kube-dns", status, body)
        return dict(obj)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


def kubelet(client: Refusing) -> Kubelet:
    return Kubelet(cast(ApiClient, client), "r1")


def test_retried_while_the_allocator_has_not_loaded_the_range() -> None:
    client, clock = Refusing([(422, NOT_LOADED)] * 3), Clock()
    out = kubelet(client).create_service(
        kube_dns_service("10.96.0.10", "r1"), clock=clock, sleep=clock.sleep
    )
    assert out["spec"]["clusterIP"] == "10.96.0.10"
    assert client.calls == 4
    assert 0 < clock.now < 1


def test_gives_up_with_the_apiservers_words_after_the_timeout() -> None:
    client, clock = Refusing([(422, NOT_LOADED)] * 10_000), Clock()
    with pytest.raises(ApiError, match=ALLOCATOR_NOT_LOADED):
        kubelet(client).create_service(
            kube_dns_service("10.96.0.10", "r1"), timeout_s=2, clock=clock, sleep=clock.sleep
        )
    assert 2 <= clock.now < 2.2


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (422, {"reason": "Invalid", "message": "provided IP is already allocated"}),
        (409, {"reason": "AlreadyExists", "message": 'services "kube-dns" already exists'}),
        (403, {"reason": "Forbidden", "message": ALLOCATOR_NOT_LOADED}),
    ],
)
def test_any_other_refusal_is_raised_at_once(status: int, body: Mapping[str, Any]) -> None:
    client, clock = Refusing([(status, body)]), Clock()
    with pytest.raises(ApiError):
        kubelet(client).create_service(
            kube_dns_service("10.96.0.10", "r1"), clock=clock, sleep=clock.sleep
        )
    assert client.calls == 1
