"""A kubeconfig, read as kubectl reads it, into an :class:`ApiClient`.

What is read: ``$KUBECONFIG`` (a ``:``-separated list, merged as kubectl merges: the first file
that names a cluster, user or context wins, and the first ``current-context`` set) or
``~/.kube/config``; the context's cluster (``server``, ``certificate-authority[-data]``,
``insecure-skip-tls-verify``, ``tls-server-name``) and user (``client-certificate[-data]``,
``client-key[-data]``, ``token``, ``tokenFile``, and an ``exec`` credential plugin, as cloud
clusters use). Relative file paths are relative to the kubeconfig that names them, as kubectl
has them. Anything else a user entry may carry (``auth-provider``, ``username``/``password``)
is refused with its name, not ignored, as is a cluster's ``proxy-url``.

Client certificate data must reach :mod:`ssl` as files: it is written to a private temporary
directory, loaded, and deleted before the client is returned.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cthcommon.errors import BackendError
from harness.kubeapi.client import ApiClient, Credentials

EXEC_TIMEOUT_S = 60.0


def kubeconfig_paths(explicit: str | None, environ: Mapping[str, str] = os.environ) -> list[Path]:
    """The files to read: the one given, else ``$KUBECONFIG``'s list, else
    ``~/.kube/config``."""
    if explicit:
        return [Path(explicit)]
    listed = [p for p in environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    if listed:
        return [Path(p) for p in listed]
    return [Path(environ.get("HOME", "~")).expanduser() / ".kube" / "config"]


@dataclass(frozen=True)
class Entry:
    """One named cluster, user or context, and the directory of the file it came from."""

    body: dict[str, Any]
    base: Path


@dataclass(frozen=True)
class Merged:
    clusters: dict[str, Entry]
    users: dict[str, Entry]
    contexts: dict[str, Entry]
    current: str | None


def merge(docs: Sequence[tuple[Path, Mapping[str, Any]]]) -> Merged:
    """kubectl's merge of several kubeconfigs: the first to name a thing wins (pure)."""
    out: dict[str, dict[str, Entry]] = {"clusters": {}, "users": {}, "contexts": {}}
    current: str | None = None
    for path, doc in docs:
        for section, key in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for item in doc.get(section) or []:
                if isinstance(item, Mapping) and "name" in item:
                    body = item.get(key) or {}
                    out[section].setdefault(str(item["name"]), Entry(dict(body), path.parent))
        current = current or doc.get("current-context") or None
    return Merged(out["clusters"], out["users"], out["contexts"], current)


def load(path: str | None) -> Merged:
    paths = kubeconfig_paths(path)
    docs: list[tuple[Path, Mapping[str, Any]]] = []
    for p in paths:
        try:
            text = p.read_text()
        except FileNotFoundError:
            if path:  # the one file the user named
                raise BackendError(f"cannot load kubeconfig {p}: no such file") from None
            continue
        except OSError as e:
            raise BackendError(f"cannot load kubeconfig {p}: {e}") from e
        try:
            doc = yaml.safe_load(text) or {}
        except yaml.YAMLError as e:
            raise BackendError(f"cannot load kubeconfig {p}: not YAML: {e}") from e
        if not isinstance(doc, Mapping):
            raise BackendError(f"cannot load kubeconfig {p}: not a kubeconfig (a mapping)")
        docs.append((p, doc))
    if not docs:
        raise BackendError(f"cannot load kubeconfig: none of {', '.join(map(str, paths))} exists")
    return merge(docs)


def _pick(m: Merged, context: str | None) -> tuple[Entry, Entry, str]:
    name = context or m.current
    if not name:
        raise BackendError("cannot load kubeconfig: no context given and no current-context")
    ctx = m.contexts.get(name)
    if ctx is None:
        raise BackendError(f"cannot load kubeconfig: no context {name!r}")
    cluster = m.clusters.get(str(ctx.body.get("cluster", "")))
    if cluster is None:
        raise BackendError(f"cannot load kubeconfig: context {name!r} names no known cluster")
    user = m.users.get(str(ctx.body.get("user", "")), Entry({}, ctx.base))
    return cluster, user, name


def _file(entry: Entry, key: str) -> Path | None:
    value = entry.body.get(key)
    if not value:
        return None
    p = Path(str(value)).expanduser()
    return p if p.is_absolute() else entry.base / p


def _data(entry: Entry, key: str) -> bytes | None:
    value = entry.body.get(key)
    if not value:
        return None
    try:  # wrapped lines are fine, as base64 -w76 writes them
        return base64.b64decode("".join(str(value).split()), validate=True)
    except ValueError as e:
        raise BackendError(f"cannot load kubeconfig: {key} is not base64: {e}") from e


UNSUPPORTED_USER_KEYS = ("auth-provider", "username", "password")
UNSUPPORTED_CLUSTER_KEYS = ("proxy-url",)


def run_exec(spec: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """An ``exec`` credential plugin's ExecCredential ``status`` (token or client cert)."""
    command = str(spec.get("command", ""))
    if not command:
        raise BackendError("cannot load kubeconfig: the user's exec plugin names no command")
    if "/" in command and not Path(command).is_absolute():
        command = str(base / command)
    env = dict(os.environ)
    for e in spec.get("env") or []:
        env[str(e["name"])] = str(e["value"])
    api_version = str(spec.get("apiVersion", "client.authentication.k8s.io/v1"))
    info = {"apiVersion": api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
    env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
    argv = [command, *map(str, spec.get("args") or [])]
    try:
        p = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=EXEC_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BackendError(f"the kubeconfig's exec plugin {command} failed: {e}") from e
    if p.returncode != 0:
        raise BackendError(
            f"the kubeconfig's exec plugin {command} exited {p.returncode}: {p.stderr[-500:]}"
        )
    try:
        status = json.loads(p.stdout)["status"]
    except (ValueError, KeyError, TypeError) as e:
        raise BackendError(f"the kubeconfig's exec plugin {command} gave no status: {e}") from e
    return dict(status)


def client_for(
    kubeconfig: str | None = None,
    context: str | None = None,
    *,
    netns: str | None = None,
    timeout: float = 10.0,
) -> ApiClient:
    """An :class:`ApiClient` for a kubeconfig's context (default: its current one)."""
    cluster, user, name = _pick(load(kubeconfig), context)
    server = str(cluster.body.get("server", ""))
    url = urllib.parse.urlsplit(server)
    if url.scheme != "https" or not url.hostname:
        raise BackendError(
            f"cannot load kubeconfig: context {name!r}: server {server!r} is not an https URL"
        )
    for unsupported in UNSUPPORTED_CLUSTER_KEYS:
        if unsupported in cluster.body:
            raise BackendError(
                f"cannot load kubeconfig: context {name!r}: the cluster's {unsupported!r} is not "
                "supported (the harness connects to the server directly)"
            )
    for unsupported in UNSUPPORTED_USER_KEYS:
        if unsupported in user.body:
            raise BackendError(
                f"cannot load kubeconfig: context {name!r}: the user's {unsupported!r} is not "
                "supported "
                "(use client certificates, a token or an exec plugin)"
            )
    token = user.body.get("token")
    token_file = _file(user, "tokenFile")
    if not token and token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as e:
            raise BackendError(f"cannot load kubeconfig: context {name!r}: tokenFile: {e}") from e
    cert_pem, key_pem = _data(user, "client-certificate-data"), _data(user, "client-key-data")
    if "exec" in user.body:
        status = run_exec(user.body["exec"], user.base)
        token = status.get("token") or token
        if status.get("clientCertificateData"):
            cert_pem = str(status["clientCertificateData"]).encode()
            key_pem = str(status.get("clientKeyData", "")).encode()
    ca_data = _data(cluster, "certificate-authority-data")
    with tempfile.TemporaryDirectory(prefix="cth-kubeconfig-") as tmp:
        cert, key = _file(user, "client-certificate"), _file(user, "client-key")
        if cert_pem is not None:
            cert = Path(tmp) / "client.crt"
            cert.write_bytes(cert_pem)
        if key_pem is not None:
            key = Path(tmp) / "client.key"
            key.touch(mode=0o600)
            key.write_bytes(key_pem)
        creds = Credentials(
            ca=_file(cluster, "certificate-authority"),
            ca_pem=ca_data.decode() if ca_data else None,
            cert=cert,
            key=key,
            token=str(token) if token else None,
            insecure=bool(cluster.body.get("insecure-skip-tls-verify")),
            server_name=cluster.body.get("tls-server-name") or None,
        )
        try:
            return ApiClient(
                url.hostname, url.port or 443, creds, netns=netns, timeout=timeout,
                prefix=url.path,
            )  # fmt: skip
        except (OSError, ValueError) as e:  # ssl.SSLError is an OSError
            raise BackendError(f"cannot load kubeconfig: context {name!r}: {e}") from e
