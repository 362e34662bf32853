"""Objects a phase applies are deleted together on exit: every delete is issued before the
wait for them to be gone (a phase's four client pods used to be deleted and waited for one
after another), in reverse order, and a failed apply or delete leaves nothing behind."""

from __future__ import annotations

from contextlib import ExitStack
from types import SimpleNamespace
from typing import Any

import pytest
from kube_fakes import FakeAPI

from cthcommon.errors import BackendError
from harness.backends.kube import cluster

pytestmark = pytest.mark.unit


def pod(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "ns"}}


class WatchedAPI(FakeAPI):
    """Records gets too, and can refuse one apply or one delete."""

    def __init__(self, *, fail_apply: str = "", fail_delete: str = "") -> None:
        super().__init__()
        self.fail_apply, self.fail_delete = fail_apply, fail_delete

    def apply(self, obj: Any) -> None:
        if obj["metadata"]["name"] == self.fail_apply:
            raise BackendError("apply refused")
        super().apply(obj)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Any:
        self.calls.append(("get", kind, namespace, name))
        return super().get(api_version, kind, name, namespace)

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        super().delete(api_version, kind, name, namespace)
        if name == self.fail_delete:
            raise BackendError("delete refused")


def settings(api: FakeAPI) -> Any:
    return SimpleNamespace(api=api, timeout_s=5.0)


def test_deletes_go_out_together_then_one_wait() -> None:
    api = WatchedAPI()
    with ExitStack() as stack:
        cluster._apply_all(settings(api), stack, [pod("a"), pod("b"), pod("c")], wait_gone=True)
    verbs = [(c[0], c[3]) for c in api.calls]
    deletes = [v for v in verbs if v[0] == "delete"]
    assert deletes == [("delete", "c"), ("delete", "b"), ("delete", "a")]
    first_get = next(i for i, v in enumerate(verbs) if v[0] == "get")
    assert all(verbs.index(d) < first_get for d in deletes)  # no wait between deletes
    assert all(api.get("v1", "Pod", n, "ns") is None for n in "abc")


def test_a_failed_apply_still_deletes_what_was_applied() -> None:
    api = WatchedAPI(fail_apply="b")
    with pytest.raises(BackendError), ExitStack() as stack:
        cluster._apply_all(settings(api), stack, [pod("a"), pod("b"), pod("c")], wait_gone=True)
    assert [c[3] for c in api.calls if c[0] == "delete"] == ["a"]


def test_a_failed_delete_does_not_stop_the_others() -> None:
    api = WatchedAPI(fail_delete="b")
    with pytest.raises(BackendError, match="delete refused"), ExitStack() as stack:
        cluster._apply_all(settings(api), stack, [pod("a"), pod("b"), pod("c")], wait_gone=True)
    assert [c[3] for c in api.calls if c[0] == "delete"] == ["c", "b", "a"]
