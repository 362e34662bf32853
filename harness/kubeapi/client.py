"""The one typed Kubernetes API client every backend uses: JSON over HTTPS, with client
certificates or a bearer token (:mod:`harness.kubeapi.kubeconfig` reads them from a
kubeconfig), optionally with its sockets made inside a network namespace (the embedded
cluster's apiserver lives in one, so the host never routes a packet to it).

Only the standard library: the harness does not depend on the ``kubernetes`` package. API
errors become :class:`ApiError` (a :class:`BackendError` carrying the HTTP status and the
apiserver's reason); a 404 on get/delete means "absent", so deletes are idempotent.
:class:`KubeAPI` is the verbs the cluster driver needs, so its unit tests can stand a fake in.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cthcommon.errors import BackendError
from cthcommon.netns import entered

Obj = dict[str, Any]
FIELD_MANAGER = "conntrack-harness"

# (apiVersion, kind) -> (plural, namespaced)
RESOURCES: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "Node"): ("nodes", False),
    ("v1", "Pod"): ("pods", True),
    ("v1", "Service"): ("services", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "Endpoints"): ("endpoints", True),
    ("discovery.k8s.io/v1", "EndpointSlice"): ("endpointslices", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "DaemonSet"): ("daemonsets", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("clusterrolebindings", False),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
}


class ApiError(BackendError):
    """The apiserver refused a request."""

    def __init__(self, what: str, status: int, body: Mapping[str, Any] | str) -> None:
        reason = body.get("reason", "") if isinstance(body, Mapping) else ""
        message = body.get("message", "") if isinstance(body, Mapping) else str(body)[:300]
        super().__init__(f"{what}: HTTP {status} {reason}: {message}", status=status)
        self.status = status
        self.reason = str(reason)
        self.message = str(message)


def resource_path(
    api_version: str, kind: str, namespace: str | None = None, name: str | None = None
) -> str:
    """The REST path of a kind (and one object of it)."""
    try:
        plural, namespaced = RESOURCES[(api_version, kind)]
    except KeyError:
        raise BackendError(f"the harness's client does not know {api_version} {kind}") from None
    base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
    if namespaced:
        if not namespace:
            raise BackendError(f"{kind} is namespaced: a namespace is required")
        base += f"/namespaces/{namespace}"
    path = f"{base}/{plural}"
    return f"{path}/{name}" if name else path


def object_path(obj: Mapping[str, Any]) -> str:
    meta = obj["metadata"]
    return resource_path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])


def collection_path(obj: Mapping[str, Any]) -> str:
    return resource_path(obj["apiVersion"], obj["kind"], obj["metadata"].get("namespace"))


class _NetnsHTTPS(http.client.HTTPSConnection):
    """An HTTPS connection whose TCP socket is created inside ``netns`` (None: here)."""

    def __init__(
        self,
        host: str,
        port: int,
        netns: str | None,
        context: ssl.SSLContext,
        timeout: float,
        *,
        server_name: str | None = None,
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._netns = netns
        self._ctx = context
        self._server_name = server_name or host

    def connect(self) -> None:
        with entered(self._netns):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            # http.client sends a request's headers and body in two writes: with Nagle the
            # body waits for the server's delayed ACK, 40 ms on every POST and PATCH
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.connect((self.host, self.port))
            self.sock = self._ctx.wrap_socket(sock, server_hostname=self._server_name)
        except BaseException:
            sock.close()
            raise


@dataclass(frozen=True)
class Credentials:
    """How the client proves who it is and whom it trusts: a CA (a file, or PEM text from a
    kubeconfig's ``certificate-authority-data``; neither: the system's), a client
    certificate and key (files), and/or a bearer token. ``insecure`` is the kubeconfig's
    ``insecure-skip-tls-verify``; ``server_name`` its ``tls-server-name``."""

    ca: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    ca_pem: str | None = None
    token: str | None = field(default=None, repr=False)
    insecure: bool = False
    server_name: str | None = None

    def context(self) -> ssl.SSLContext:
        """Trusts the given CA alone, as kubectl does (the system's CAs only when none is
        given)."""
        ctx = ssl.create_default_context(
            cafile=str(self.ca) if self.ca else None, cadata=self.ca_pem or None
        )
        if self.insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if self.cert is not None:
            ctx.load_cert_chain(str(self.cert), str(self.key) if self.key else None)
        return ctx


class KubeAPI(Protocol):
    """The verbs the cluster driver uses (:class:`ApiClient` has them; unit tests fake them)."""

    def apply(self, obj: Mapping[str, Any]) -> Any: ...

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
    ) -> Any: ...

    def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> None: ...


def ref(obj: Mapping[str, Any]) -> tuple[str, str, str, str | None]:
    """An object's (apiVersion, kind, name, namespace)."""
    meta = obj["metadata"]
    return obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace")


class ApiClient:
    """JSON over one kept-alive HTTPS connection to ``host:port`` from namespace ``netns``
    (None: this host's). ``prefix``: the server URL's path, for an apiserver served below one
    (a proxy's ``https://host/k8s/clusters/c-1``). One request at a time: a lock serializes
    the threads that share a client."""

    def __init__(
        self,
        host: str,
        port: int,
        creds: Credentials,
        *,
        netns: str | None = None,
        timeout: float = 10.0,
        prefix: str = "",
    ) -> None:
        self.host, self.port, self.netns, self.timeout = host, port, netns, timeout
        self.prefix = prefix.rstrip("/")
        self._ctx = creds.context()
        self._token = creds.token
        self._server_name = creds.server_name
        self._conn: _NetnsHTTPS | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport ---------------------------------------------------------------------
    def raw(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        content_type: str = "application/json",
        query: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes]:
        """One request; a connection the server closed meanwhile is reopened once."""
        url = self.prefix + path + ("?" + urllib.parse.urlencode(query) if query else "")
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Accept": "application/json"}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        if data is not None:
            headers["Content-Type"] = content_type
        with self._lock:
            for attempt in (0, 1):
                if self._conn is None:
                    self._conn = _NetnsHTTPS(
                        self.host, self.port, self.netns, self._ctx, self.timeout,
                        server_name=self._server_name,
                    )  # fmt: skip
                try:
                    self._conn.request(method, url, body=data, headers=headers)
                    resp = self._conn.getresponse()
                    return resp.status, resp.read()
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    self.close()
                    if attempt:
                        raise
                except OSError:
                    self.close()
                    raise
        raise AssertionError("unreachable")

    def call(
        self,
        what: str,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        ok_missing: bool = False,
        content_type: str = "application/json",
        query: Mapping[str, str] | None = None,
    ) -> Obj | None:
        try:
            status, data = self.raw(method, path, body, content_type=content_type, query=query)
        except OSError as e:
            raise BackendError(f"{what}: cannot reach the apiserver at {self.host}: {e}") from e
        try:
            parsed: Any = json.loads(data) if data else {}
        except ValueError:
            parsed = data.decode(errors="replace")
        if status == 404 and ok_missing:
            return None
        if status >= 300:
            raise ApiError(what, status, parsed)
        return parsed if isinstance(parsed, dict) else {}

    # --- typed verbs ---------------------------------------------------------------------
    def create(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> Obj:
        what = f"create {obj['kind']}/{obj['metadata']['name']}"
        q = {"dryRun": "All"} if dry_run else None
        out = self.call(what, "POST", collection_path(obj), obj, query=q)
        assert out is not None
        return out

    def apply(self, obj: Mapping[str, Any], *, field_manager: str = FIELD_MANAGER) -> Obj:
        """Server-side apply (create or update), forcing conflicts as the harness owns it."""
        what = f"apply {obj['kind']}/{obj['metadata']['name']}"
        q = {"fieldManager": field_manager, "force": "true"}
        out = self.call(
            what, "PATCH", object_path(obj), obj, content_type="application/apply-patch+yaml",
            query=q,
        )  # fmt: skip
        assert out is not None
        return out

    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None:
        path = resource_path(api_version, kind, namespace, name)
        return self.call(f"get {kind}/{name}", "GET", path, ok_missing=True)

    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[Obj]:
        plural, namespaced = RESOURCES.get((api_version, kind), ("", False))
        if namespaced and namespace is None:  # across all namespaces
            base = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            path = f"{base}/{plural}"
        else:
            path = resource_path(api_version, kind, namespace)
        q = {"labelSelector": label_selector} if label_selector else None
        out = self.call(f"list {kind}", "GET", path, query=q)
        # a list's items carry no apiVersion and kind of their own: give them theirs, as
        # kubectl and client-go's dynamic client do, so an item is a whole object
        return [
            {"apiVersion": api_version, "kind": kind, **o} for o in (out or {}).get("items", [])
        ]

    def merge_patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        body: Mapping[str, Any],
        *,
        subresource: str = "",
    ) -> Obj:
        path = resource_path(api_version, kind, namespace, name)
        if subresource:
            path += f"/{subresource}"
        what = f"patch {kind}/{name}{'/' + subresource if subresource else ''}"
        out = self.call(what, "PATCH", path, body, content_type="application/merge-patch+json")
        assert out is not None
        return out

    def patch(
        self, api_version: str, kind: str, name: str, namespace: str | None, body: Mapping[str, Any]
    ) -> Obj:
        """A JSON merge patch of the object itself."""
        return self.merge_patch(api_version, kind, name, namespace, body)

    def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        grace_s: int | None = None,
        propagation: str = "Foreground",
    ) -> None:
        """Delete (absent is fine). By default as a user's cluster expects it: the object's
        own grace period, and the owner gone only once its dependents are. The embedded
        cluster, whose kubelet is the harness, deletes at once (``grace_s=0``, background)."""
        path = resource_path(api_version, kind, namespace, name)
        body: dict[str, Any] = {
            "kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation,
        }  # fmt: skip
        if grace_s is not None:
            body["gracePeriodSeconds"] = grace_s
        self.call(f"delete {kind}/{name}", "DELETE", path, body, ok_missing=True)
