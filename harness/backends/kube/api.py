"""The thin I/O shell over the Kubernetes API: apply, get, list, merge-patch, delete.

:class:`KubeAPI` is what the rest of the backend talks to; :class:`DynamicKubeAPI` implements it
with the ``kubernetes`` client's dynamic client (server-side apply, field manager
``conntrack-harness``). API exceptions become :class:`BackendError` at this boundary; a 404 on
get/delete is "absent", not an error, so deletes are idempotent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from cthcommon.errors import BackendError

FIELD_MANAGER = "conntrack-harness"


class KubeAPI(Protocol):
    def apply(self, obj: Mapping[str, Any]) -> None: ...

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None: ...

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]: ...

    def patch(
        self, api_version: str, kind: str, name: str, namespace: str | None, body: Mapping[str, Any]
    ) -> None: ...

    def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> None: ...


def ref(obj: Mapping[str, Any]) -> tuple[str, str, str, str | None]:
    meta = obj["metadata"]
    return obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace")


class DynamicKubeAPI:
    """KubeAPI over ``kubernetes.dynamic.DynamicClient`` for one kubeconfig (and context)."""

    def __init__(self, kubeconfig: str | None = None, context: str | None = None) -> None:
        from kubernetes import config, dynamic
        from kubernetes.client import api_client

        try:
            client = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=kubeconfig, context=context
            )
        except Exception as e:  # the loader raises ConfigException, TypeError, OSError ...
            raise BackendError(f"cannot load kubeconfig {kubeconfig or '(default)'}: {e}") from e
        self._api_client: api_client.ApiClient = client
        self._dyn = dynamic.DynamicClient(client)  # type: ignore[no-untyped-call]

    def _resource(self, api_version: str, kind: str) -> Any:
        try:
            return self._dyn.resources.get(api_version=api_version, kind=kind)
        except Exception as e:
            raise BackendError(f"the cluster does not serve {api_version} {kind}: {e}") from e

    @staticmethod
    def _status(e: Exception) -> int | None:
        status = getattr(e, "status", None)
        return status if isinstance(status, int) else None

    def apply(self, obj: Mapping[str, Any]) -> None:
        api_version, kind, name, namespace = ref(obj)
        res = self._resource(api_version, kind)
        try:
            res.server_side_apply(
                body=dict(obj),
                namespace=namespace,
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
        except Exception as e:
            raise BackendError(f"apply {kind}/{name} failed: {e}", status=self._status(e)) from e

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        res = self._resource(api_version, kind)
        try:
            out: dict[str, Any] = res.get(name=name, namespace=namespace).to_dict()
        except Exception as e:
            if self._status(e) == 404:
                return None
            raise BackendError(f"get {kind}/{name} failed: {e}", status=self._status(e)) from e
        return out

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        res = self._resource(api_version, kind)
        try:
            items = res.get(namespace=namespace, label_selector=label_selector).to_dict()["items"]
        except Exception as e:
            raise BackendError(f"list {kind} failed: {e}", status=self._status(e)) from e
        return list(items)

    def patch(
        self, api_version: str, kind: str, name: str, namespace: str | None, body: Mapping[str, Any]
    ) -> None:
        res = self._resource(api_version, kind)
        try:
            res.patch(
                body=dict(body),
                name=name,
                namespace=namespace,
                content_type="application/merge-patch+json",
            )
        except Exception as e:
            raise BackendError(f"patch {kind}/{name} failed: {e}", status=self._status(e)) from e

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> None:
        res = self._resource(api_version, kind)
        try:
            res.delete(name=name, namespace=namespace, propagation_policy="Foreground")
        except Exception as e:
            if self._status(e) == 404:
                return
            raise BackendError(f"delete {kind}/{name} failed: {e}", status=self._status(e)) from e


Clock = Callable[[], float]
Sleep = Callable[[float], None]


def wait_until(
    what: str,
    check: Callable[[], str | None],
    *,
    timeout_s: float,
    interval_s: float = 0.25,  # a local API answers a GET in milliseconds
    clock: Clock = time.monotonic,
    sleep: Sleep = time.sleep,
) -> None:
    """Poll ``check`` (None = done, else the reason it is not) until done or timeout.

    Only :class:`BackendError` from the check is retried (API hiccups while a cluster settles);
    the timeout message carries the last reason.
    """
    deadline = clock() + timeout_s
    last = "not checked yet"
    while True:
        try:
            reason = check()
        except BackendError as e:
            reason = str(e)
        if reason is None:
            return
        last = reason
        if clock() >= deadline:
            raise BackendError(f"timed out after {timeout_s:.0f}s waiting for {what}: {last}")
        sleep(interval_s)
