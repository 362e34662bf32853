"""The control plane's self-signed set-up, made with the ``openssl`` CLI: the user manages none.

One CA signs the apiserver's serving certificate and a client certificate per component; the
service-account token key pair is separate. Each client gets a kubeconfig. Keys are EC P-256
(fast to make, accepted everywhere in Kubernetes, including service-account token signing).

The identities are the ones the apiserver's bootstrap RBAC already knows:
``system:kube-proxy`` (bound to ``system:node-proxier``) and
``system:kube-controller-manager``. CoreDNS is its kubeadm service account
``system:serviceaccount:kube-system:coredns``; the harness adds kubeadm's ``system:coredns``
role and binding for it, as kubeadm does.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cthcommon.errors import CommandFailed

DAYS = 2
CA_SUBJECT = "/CN=conntrack-harness-ca"


@dataclass(frozen=True)
class Identity:
    """One client certificate: file stem, user name (CN) and groups (O)."""

    name: str
    user: str
    groups: tuple[str, ...] = ()

    def subject(self) -> str:
        return "".join(f"/O={g}" for g in self.groups) + f"/CN={self.user}"


ADMIN = Identity("admin", "kubernetes-admin", ("system:masters",))
KUBE_PROXY = Identity("kube-proxy", "system:kube-proxy")
CONTROLLER_MANAGER = Identity("controller-manager", "system:kube-controller-manager")
COREDNS = Identity(
    "coredns",
    "system:serviceaccount:kube-system:coredns",
    ("system:serviceaccounts", "system:serviceaccounts:kube-system"),
)
NODE_CACHE = Identity(
    "node-cache",
    "system:serviceaccount:kube-system:node-local-dns",
    ("system:serviceaccounts", "system:serviceaccounts:kube-system"),
)
IDENTITIES = (ADMIN, KUBE_PROXY, CONTROLLER_MANAGER, COREDNS, NODE_CACHE)


def apiserver_sans(advertise_ip: str, service_ip: str, cluster_domain: str) -> list[str]:
    """The names and addresses a client may use for the apiserver (kubeadm's list)."""
    names = ["kubernetes", "kubernetes.default", "kubernetes.default.svc"]
    names.append(f"kubernetes.default.svc.{cluster_domain}")
    return [*(f"DNS:{n}" for n in names), f"IP:{advertise_ip}", f"IP:{service_ip}", "IP:127.0.0.1"]


def _ec_key() -> list[str]:
    return ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def ca_argv(d: Path) -> list[str]:
    return [
        "openssl", "req", "-x509", *_ec_key(), "-keyout", str(d / "ca.key"),
        "-out", str(d / "ca.crt"), "-days", str(DAYS), "-subj", CA_SUBJECT,
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    ]  # fmt: skip


def leaf_argv(d: Path, stem: str, subject: str, usage: str, sans: Sequence[str] = ()) -> list[str]:
    """A certificate signed by the CA in ``d`` (``usage``: serverAuth or clientAuth)."""
    argv = [
        "openssl", "req", "-x509", *_ec_key(), "-keyout", str(d / f"{stem}.key"),
        "-out", str(d / f"{stem}.crt"), "-days", str(DAYS), "-subj", subject,
        "-CA", str(d / "ca.crt"), "-CAkey", str(d / "ca.key"),
        "-addext", "basicConstraints=critical,CA:FALSE",
        "-addext", "keyUsage=critical,digitalSignature,keyEncipherment",
        "-addext", f"extendedKeyUsage={usage}",
    ]  # fmt: skip
    if sans:
        argv += ["-addext", "subjectAltName=" + ",".join(sans)]
    return argv


def sa_key_argvs(d: Path) -> list[list[str]]:
    return [
        ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-out", str(d / "sa.key")],
        ["openssl", "pkey", "-in", str(d / "sa.key"), "-pubout", "-out", str(d / "sa.pub")],
    ]  # fmt: skip


def kubeconfig(server: str, ca: Path, cert: Path, key: Path, user: str) -> str:
    """A kubeconfig with one cluster, user and context (file paths, not inline data)."""
    return f"""apiVersion: v1
kind: Config
clusters:
- name: cth
  cluster:
    server: {server}
    certificate-authority: {ca}
users:
- name: {user}
  user:
    client-certificate: {cert}
    client-key: {key}
contexts:
- name: cth
  context:
    cluster: cth
    user: {user}
current-context: cth
"""


@dataclass(frozen=True)
class Pki:
    """The files of one set-up, all inside ``dir``."""

    dir: Path

    @property
    def ca(self) -> Path:
        return self.dir / "ca.crt"

    def cert(self, stem: str) -> Path:
        return self.dir / f"{stem}.crt"

    def key(self, stem: str) -> Path:
        return self.dir / f"{stem}.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"

    def kubeconfig(self, who: Identity) -> Path:
        return self.dir / f"{who.name}.kubeconfig"


def _openssl(argv: list[str]) -> None:
    try:
        cp = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError as e:
        raise CommandFailed(argv, 127, str(e)) from e
    if cp.returncode != 0:
        raise CommandFailed(argv, cp.returncode, cp.stderr)


def make_pki(
    d: Path, *, server: str, advertise_ip: str, service_ip: str, cluster_domain: str
) -> Pki:
    """Make the CA, the apiserver's serving pair, the service-account pair, and a client
    certificate and kubeconfig per identity, into the (existing, private) directory ``d``."""
    _openssl(ca_argv(d))
    sans = apiserver_sans(advertise_ip, service_ip, cluster_domain)
    _openssl(leaf_argv(d, "apiserver", "/CN=kube-apiserver", "serverAuth", sans))
    for argv in sa_key_argvs(d):
        _openssl(argv)
    pki = Pki(d)
    for who in IDENTITIES:
        _openssl(leaf_argv(d, who.name, who.subject(), "clientAuth"))
    write_kubeconfigs(pki, server)
    return pki


def write_kubeconfigs(pki: Pki, server: str) -> None:
    """A kubeconfig per identity, naming the files of ``pki`` where they are now."""
    for who in IDENTITIES:
        pki.kubeconfig(who).write_text(
            kubeconfig(server, pki.ca, pki.cert(who.name), pki.key(who.name), who.user)
        )
