"""The one API client, made from kubeconfigs as kind, a user's cluster and the embedded cluster
write them, against a real TLS server on loopback that checks the client's certificate or
token, as an apiserver does. The certificates come from the embedded cluster's own PKI code
(the ``openssl`` CLI)."""

from __future__ import annotations

import base64
import http.server
import json
import ssl
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from cthcommon.errors import BackendError
from harness.backends.netns.k8s import pki as K
from harness.kubeapi.client import ApiClient, ApiError
from harness.kubeapi.kubeconfig import client_for, kubeconfig_paths, merge

pytestmark = pytest.mark.unit


@dataclass
class Seen:
    path: str = ""
    auth: str = ""
    peer_cn: str = ""
    body: Any = None


@dataclass
class Server:
    port: int
    pki: K.Pki
    seen: Seen

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    d = tmp_path_factory.mktemp("pki")
    d.chmod(0o700)
    pki = K.make_pki(
        d, server="https://127.0.0.1", advertise_ip="127.0.0.1", service_ip="10.96.0.1",
        cluster_domain="cluster.local",
    )  # fmt: skip
    seen = Seen()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            seen.body = json.loads(self.rfile.read(length)) if length else None
            seen.path, seen.auth = self.path, self.headers.get("Authorization", "")
            peer = self.connection.getpeercert()  # type: ignore[attr-defined]
            subject = dict(x[0] for x in peer["subject"]) if peer else {}
            seen.peer_cn = subject.get("commonName", "")
            if not seen.peer_cn and seen.auth != "Bearer s3cret":
                self._send(401, {"kind": "Status", "reason": "Unauthorized", "message": "no"})
            elif self.path.split("?")[0].endswith("/configmaps"):  # a list: bare items
                self._send(200, {"kind": "ConfigMapList", "items": [{"metadata": {"name": "a"}}]})
            elif "/configmaps/absent" in self.path:
                self._send(404, {"kind": "Status", "reason": "NotFound", "message": "absent"})
            else:
                self._send(200, {"kind": "ConfigMap", "metadata": {"name": "x"}})

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PATCH = do_DELETE = do_POST = _answer

        def log_message(self, *_: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki.ca))
    ctx.load_cert_chain(str(pki.cert("apiserver")), str(pki.key("apiserver")))
    ctx.verify_mode = ssl.CERT_OPTIONAL  # a token instead of a certificate is fine
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        yield Server(httpd.server_address[1], pki, seen)
    finally:
        httpd.shutdown()
        httpd.server_close()


def _b64(p: Path, width: int = 0) -> str:
    """A file as kubeconfig data: one line, or lines of ``width`` (as base64 -w76 writes)."""
    b = base64.b64encode(p.read_bytes()).decode()
    return "\n".join(b[i : i + width] for i in range(0, len(b), width)) if width else b


def _write(d: Path, cluster: dict[str, Any], user: dict[str, Any], name: str = "k") -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "ctx",
    }
    p = d / name
    p.write_text(yaml.safe_dump(doc))
    return p


@pytest.mark.parametrize("width", [0, 76])  # one line as kind writes it; wrapped
def test_inline_data_as_kind_writes_it(
    server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    pki = server.pki
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    kc = _write(
        tmp_path,
        {"server": server.url, "certificate-authority-data": _b64(pki.ca, width)},
        {
            "client-certificate-data": _b64(pki.cert(K.ADMIN.name), width),
            "client-key-data": _b64(pki.key(K.ADMIN.name), width),
        },
    )
    with client_for(str(kc)) as api:
        assert api.get("v1", "ConfigMap", "x", "kube-system") == {
            "kind": "ConfigMap", "metadata": {"name": "x"},
        }  # fmt: skip
        assert server.seen.peer_cn == K.ADMIN.user
        assert server.seen.path == "/api/v1/namespaces/kube-system/configmaps/x"
        assert api.get("v1", "ConfigMap", "absent", "kube-system") is None  # 404: absent
        # a list's items come back whole, with the apiVersion and kind the server leaves out
        assert api.list("v1", "ConfigMap", "kube-system", "a=b") == [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}
        ]
        assert server.seen.path == "/api/v1/namespaces/kube-system/configmaps?labelSelector=a%3Db"
    assert not list(tmp_path.glob("cth-kubeconfig-*"))  # the key's copy is gone


def test_file_paths_relative_to_the_kubeconfig(server: Server, tmp_path: Path) -> None:
    pki = server.pki
    kc = _write(
        pki.dir,
        {"server": server.url, "certificate-authority": "ca.crt"},
        {"client-certificate": f"{K.KUBE_PROXY.name}.crt", "client-key": "kube-proxy.key"},
        name="relative.kubeconfig",
    )
    with client_for(str(kc)) as api:
        api.patch("v1", "ConfigMap", "x", "kube-system", {"data": {"a": "b"}})
    assert server.seen.peer_cn == K.KUBE_PROXY.user
    assert server.seen.body == {"data": {"a": "b"}}


def test_token_from_an_exec_plugin_and_a_server_path_prefix(server: Server, tmp_path: Path) -> None:
    plugin = tmp_path / "cred.sh"
    plugin.write_text(
        "#!/bin/sh\n"
        'case "$KUBERNETES_EXEC_INFO" in *ExecCredential*) ;; *) exit 3 ;; esac\n'
        'echo \'{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential",'
        ' "status": {"token": "s3cret"}}\'\n'
    )
    plugin.chmod(0o755)
    kc = _write(
        tmp_path,
        {"server": server.url + "/k8s/clusters/c-1", "certificate-authority": str(server.pki.ca)},
        {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "./cred.sh"}},
    )
    with client_for(str(kc)) as api:
        api.delete("v1", "ConfigMap", "x", "default")
    assert (server.seen.auth, server.seen.peer_cn) == ("Bearer s3cret", "")
    assert server.seen.path == "/k8s/clusters/c-1/api/v1/namespaces/default/configmaps/x"
    assert server.seen.body["propagationPolicy"] == "Foreground"  # a user's cluster's default
    assert "gracePeriodSeconds" not in server.seen.body


def test_no_credentials_is_the_servers_refusal(server: Server, tmp_path: Path) -> None:
    kc = _write(tmp_path, {"server": server.url, "certificate-authority": str(server.pki.ca)}, {})
    with client_for(str(kc)) as api, pytest.raises(ApiError) as e:
        api.list("v1", "ConfigMap", "default")
    assert e.value.status == 401
    assert "Unauthorized" in str(e.value)


def test_a_server_not_trusted_is_refused(server: Server, tmp_path: Path) -> None:
    kc = _write(tmp_path, {"server": server.url}, {"token": "s3cret"})  # the system's CAs only
    with client_for(str(kc)) as api, pytest.raises(BackendError, match="cannot reach"):
        api.get("v1", "ConfigMap", "x", "default")
    kc = _write(
        tmp_path, {"server": server.url, "insecure-skip-tls-verify": True}, {"token": "s3cret"}
    )
    with client_for(str(kc)) as api:  # what the user asked for
        assert api.get("v1", "ConfigMap", "x", "default") is not None


@pytest.mark.parametrize(
    ("cluster", "user", "context", "match"),
    [
        ({"server": "http://127.0.0.1:1"}, {}, None, "is not an https URL"),
        ({"server": "https://127.0.0.1:1"}, {"auth-provider": {"name": "gcp"}}, None,
         "'auth-provider' is not supported"),
        ({"server": "https://127.0.0.1:1"}, {}, "other", "no context 'other'"),
        ({"server": "https://127.0.0.1:1", "certificate-authority-data": "%%"}, {}, None,
         "not base64"),
        ({"server": "https://127.0.0.1:1"}, {"exec": {"command": "/bin/false"}}, None,
         "exec plugin /bin/false exited 1"),
        ({"server": "https://127.0.0.1:1", "proxy-url": "http://127.0.0.1:3128"}, {}, None,
         "'proxy-url' is not supported"),
        ({"server": "https://127.0.0.1:1"}, {"tokenFile": "/nonexistent/token"}, None,
         "tokenFile: .*No such file"),
    ],
)  # fmt: skip
def test_bad_kubeconfigs_say_what_is_wrong(
    tmp_path: Path, cluster: dict[str, Any], user: dict[str, Any], context: str | None, match: str
) -> None:
    with pytest.raises(BackendError, match=match):
        client_for(str(_write(tmp_path, cluster, user)), context)


def test_missing_or_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="no such file"):
        client_for(str(tmp_path / "nope"))
    (tmp_path / "list").write_text("- a\n")
    with pytest.raises(BackendError, match="not a kubeconfig"):
        client_for(str(tmp_path / "list"))


def test_kubeconfig_list_merges_as_kubectl_does(tmp_path: Path) -> None:
    env = {"KUBECONFIG": f"{tmp_path}/a:{tmp_path}/b", "HOME": "/home/x"}
    assert kubeconfig_paths(None, env) == [tmp_path / "a", tmp_path / "b"]
    assert kubeconfig_paths(None, {"HOME": "/home/x"}) == [Path("/home/x/.kube/config")]
    assert kubeconfig_paths("/k", env) == [Path("/k")]
    a = {"clusters": [{"name": "c", "cluster": {"server": "https://a"}}]}
    b = {
        "clusters": [
            {"name": "c", "cluster": {"server": "https://b"}},
            {"name": "d", "cluster": {"server": "https://d"}},
        ],
        "current-context": "ctx-b",
    }
    m = merge([(tmp_path / "a", a), (tmp_path / "sub" / "b", b)])
    assert m.clusters["c"].body["server"] == "https://a"  # the first to name it wins
    assert m.clusters["d"].base == tmp_path / "sub"
    assert m.current == "ctx-b"


def test_client_is_one_request_at_a_time(server: Server, tmp_path: Path) -> None:
    """Threads share a client (the kind driver's pool): the lock keeps their requests apart."""
    kc = _write(tmp_path, {"server": server.url, "certificate-authority": str(server.pki.ca)},
                {"token": "s3cret"})  # fmt: skip
    api: ApiClient = client_for(str(kc))
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(20):
                assert api.get("v1", "ConfigMap", "x", "default") is not None
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    api.close()
    assert errors == []
