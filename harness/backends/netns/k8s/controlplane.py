"""etcd, kube-apiserver and kube-controller-manager in a control-plane network namespace.

The namespace hangs off the ``vpc`` router like a node (``172.18.0.2``, inside the plan's node
range), so kube-proxy, CoreDNS and the harness reach the apiserver over the topology's own
links; without a vpc (the API-only tests) an empty bridge holds the address. etcd listens on
the namespace's loopback only. Every process, file and namespace is journaled before it
exists and undone in reverse on every exit path; a failure halfway through ``__enter__``
undoes what was started, then re-raises with the failing component's log tail.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import ssl
import time
import urllib.parse
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cthcommon.errors import BackendError
from cthcommon.netns import http_get, run
from harness.backends.netns.k8s import pki as K
from harness.backends.netns.k8s import seed as S
from harness.backends.netns.startmarks import Marks
from harness.kernel.journal import Journal
from harness.kernel.process import Proc, spawn, stop_pid, stop_pids
from harness.kernel.stacked import Stacked
from harness.kubeapi.client import ApiClient, Credentials
from harness.kubeapi.wait import wait_for
from harness.upstream import BINARY_COMPONENT, component_dir, installed, locate, release

CONTROL_PLANE_IP = "172.18.0.2"  # in the plan's node range (172.18.0.0/24); .1 is the vpc
VPC_GW = "172.18.0.1"
APISERVER_PORT = 6443
ETCD_CLIENT = "http://127.0.0.1:2379"
SERVICE_CIDR = "10.96.0.0/16"
KUBERNETES_SERVICE_IP = "10.96.0.1"  # the first address of the Service range
CLUSTER_CIDR = "10.244.0.0/16"
CONTROLLERS = ("endpointslice", "serviceaccount", "namespace", "garbagecollector")
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager")
# the apiserver's post-start hook that creates the system PriorityClasses: wait.Poll with a
# 1 s period that does not run at once, so it never passes sooner than a second after start
TEARDOWN_GRACE_S = 0.3
SEED_STOP_GRACE_S = 10.0  # stopping the start that makes the kept control plane, cleanly
PRIORITY_CLASSES_HOOK = "poststarthook/scheduling/bootstrap-system-priority-classes"
RBAC_HOOK = "poststarthook/rbac/bootstrap-roles"  # wait.Poll(1 s) too


@dataclass(frozen=True)
class ControlPlaneConfig:
    run_id: str
    ns: str
    ip: str = CONTROL_PLANE_IP
    vpc_ns: str | None = None
    vpc_if: str = "cp"
    cluster_domain: str = "cluster.local"
    service_cidr: str = SERVICE_CIDR
    cluster_cidr: str = CLUSTER_CIDR
    kubernetes: str | None = None  # pinned version; None: the versions file's default
    controllers: tuple[str, ...] = CONTROLLERS
    # start from the kept empty control plane in the cache (made by the first start)
    use_seed: bool = True

    @property
    def server(self) -> str:
        return f"https://{self.ip}:{APISERVER_PORT}"


def etcd_argv(binary: Path, data_dir: Path) -> list[str]:
    peer = "http://127.0.0.1:2380"
    return [
        str(binary),
        "--name=cth",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={ETCD_CLIENT}",
        f"--advertise-client-urls={ETCD_CLIENT}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=cth={peer}",
        "--initial-cluster-state=new",
        # the data lives on tmpfs for one run: fsync buys nothing here
        "--unsafe-no-fsync",
        "--log-level=warn",
    ]


def apiserver_argv(binary: Path, cfg: ControlPlaneConfig, p: K.Pki, cert_dir: Path) -> list[str]:
    return [
        str(binary),
        f"--etcd-servers={ETCD_CLIENT}",
        f"--advertise-address={cfg.ip}",
        "--bind-address=0.0.0.0",
        f"--secure-port={APISERVER_PORT}",
        f"--cert-dir={cert_dir}",
        f"--tls-cert-file={p.cert('apiserver')}",
        f"--tls-private-key-file={p.key('apiserver')}",
        f"--client-ca-file={p.ca}",
        f"--service-account-issuer=https://kubernetes.default.svc.{cfg.cluster_domain}",
        f"--service-account-key-file={p.sa_pub}",
        f"--service-account-signing-key-file={p.sa_key}",
        f"--service-cluster-ip-range={cfg.service_cidr}",
        "--authorization-mode=RBAC",
        "--allow-privileged=true",
        # one small cluster: API priority and fairness only costs start-up time
        "--enable-priority-and-fairness=false",
        "--profiling=false",
        "--v=1",
    ]


def controller_manager_argv(
    binary: Path, cfg: ControlPlaneConfig, p: K.Pki, cert_dir: Path
) -> list[str]:
    kc = p.kubeconfig(K.CONTROLLER_MANAGER)
    return [
        str(binary),
        f"--kubeconfig={kc}",
        f"--authentication-kubeconfig={kc}",
        f"--authorization-kubeconfig={kc}",
        f"--controllers={','.join(cfg.controllers)}",
        # as kubeadm runs it: each controller with its own service account's token
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={p.sa_key}",
        f"--root-ca-file={p.ca}",
        f"--cluster-cidr={cfg.cluster_cidr}",
        f"--service-cluster-ip-range={cfg.service_cidr}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        "--secure-port=10257",
        f"--cert-dir={cert_dir}",
        "--profiling=false",
        "--v=1",
    ]


def component_info(binary: str, kubernetes: str | None = None) -> dict[str, str]:
    """``{version, source}`` of a cached binary's component (from the cache's .complete)."""
    component = BINARY_COMPONENT[binary]
    version = release(kubernetes).version_of(component)
    source = "unknown"
    try:
        data = json.loads((component_dir(component, version) / ".complete").read_text())
        source = str(data.get("source", source))
    except (OSError, ValueError, AttributeError):
        pass
    return {"version": version, "source": source}


@dataclass
class Timings:
    """Seconds from start to each component's readiness (the warm start's parts)."""

    marks: dict[str, float] = field(default_factory=dict)


class ControlPlane(Stacked):
    """The running control plane. Use as a context manager."""

    def __init__(
        self,
        cfg: ControlPlaneConfig,
        journal: Journal,
        workdir: Path,
        marks: Marks | None = None,
        *,
        ready_on_enter: bool = True,
    ) -> None:
        """``marks``: the cluster's start-up stages, this one's marked on it too.
        ``ready_on_enter`` False: entering returns once kube-apiserver serves (everything
        but its system priority classes) and kube-controller-manager is started; the caller
        creates what needs no service account meanwhile, then calls :meth:`wait_ready`."""
        self.cfg = cfg
        self.marks = marks
        self.ready_on_enter = ready_on_enter
        self._ready = False
        self.seeded = False  # etcd's data is a copy of the kept control plane's
        self._client: ApiClient | None = None
        self._t0 = 0.0
        self.journal = journal
        self.dir = workdir / "control-plane"
        self.procs: dict[str, Proc] = {}
        self.timings = Timings()
        self._stack = ExitStack()
        self._pki: K.Pki | None = None

    # --- lifecycle ------------------------------------------------------------------------
    @property
    def pki(self) -> K.Pki:
        if self._pki is None:
            raise BackendError("the control plane is not started")
        return self._pki

    def client(self, who: K.Identity = K.ADMIN, netns: str | None = None) -> ApiClient:
        """A client with ``who``'s certificate, its sockets made in ``netns`` (default: the
        control-plane namespace itself, so it works before any node exists)."""
        creds = Credentials(self.pki.ca, self.pki.cert(who.name), self.pki.key(who.name))
        return ApiClient(self.cfg.ip, APISERVER_PORT, creds, netns=netns or self.cfg.ns)

    def components(self) -> dict[str, dict[str, str]]:
        return {b: component_info(b, self.cfg.kubernetes) for b in BINARIES}

    # --- start ----------------------------------------------------------------------------
    def _start(self) -> None:
        t0 = self._t0 = time.monotonic()
        bins = {b: locate(b, self.cfg.kubernetes) for b in BINARIES}  # before any host change
        for d in (self.dir.parent, self.dir):  # the run's workdir too, when it is ours
            if not d.exists():
                self.journal.record("dir", path=str(d))
                d.mkdir(mode=0o700)
                self._stack.callback(shutil.rmtree, d, True)
        self._netns()
        pki_dir = self.dir / "pki"
        pki_dir.mkdir(mode=0o700)
        self._pki = K.Pki(pki_dir)
        entry: Path | None = None
        if self.cfg.use_seed:
            inputs = self.seed_inputs()
            name = S.key(inputs)
            entry = S.lookup(name)
            if entry is None:  # the cache has none: a start from nothing makes it
                entry = self._make_seed(bins, name, inputs)
                self._mark("kept control plane made", t0)
        if entry is None:
            K.make_pki(
                pki_dir,
                server=self.cfg.server,
                advertise_ip=self.cfg.ip,
                service_ip=KUBERNETES_SERVICE_IP,
                cluster_domain=self.cfg.cluster_domain,
            )
        else:  # the kept PKI and a copy of the kept etcd data, this run's own
            S.restore(entry, pki_dir, self.dir / "etcd")
            K.write_kubeconfigs(self.pki, self.cfg.server)
            self.seeded = True
        self._mark("pki", t0)
        self._run(bins)
        self._stack.callback(self._stop_all)  # unwound first: the three at once
        if self.ready_on_enter:
            self.wait_ready()

    def _stop_all(self) -> None:
        """Teardown: etcd, kube-apiserver and kube-controller-manager together in one short
        grace (nothing is measured any more); each one's own undo then finds it gone."""
        stop_pids([(p.pid, p.start) for p in self.procs.values()], TEARDOWN_GRACE_S)

    def seed_inputs(self) -> dict[str, Any]:
        """What the kept control plane depends on: the binaries (their sha256 in the
        cache's stamps), the settings and every component's flags, without a run's paths."""
        shas = {}
        for b in BINARIES:
            component = BINARY_COMPONENT[b]
            entry = installed(component, release(self.cfg.kubernetes).version_of(component), b)
            shas[b] = str((entry or {}).get("sha256", "unknown"))
        # the release is in the binaries' sha256 (None and its default name the same ones)
        cfg = dataclasses.replace(
            self.cfg, run_id="", ns="", vpc_ns=None, vpc_if="", kubernetes=None
        )
        p = K.Pki(Path("PKI"))
        config = {
            "settings": dataclasses.asdict(cfg),
            "pki_days": K.DAYS,
            "identities": [dataclasses.astuple(i) for i in K.IDENTITIES],
            "etcd": etcd_argv(Path("BIN"), Path("DATA")),
            "kube-apiserver": apiserver_argv(Path("BIN"), cfg, p, Path("CERT")),
            "kube-controller-manager": controller_manager_argv(Path("BIN"), cfg, p, Path("CERT")),
        }
        return S.key_inputs(shas, config)

    def _make_seed(self, bins: dict[str, Path], name: str, inputs: dict[str, Any]) -> Path:
        """Start the control plane from nothing, wait until it is ready (so its bootstrap
        objects and service accounts are stored), stop it cleanly and keep its PKI and etcd
        data in the cache; then this run starts again from a copy, like every later run."""
        K.make_pki(
            self.pki.dir,
            server=self.cfg.server,
            advertise_ip=self.cfg.ip,
            service_ip=KUBERNETES_SERVICE_IP,
            cluster_domain=self.cfg.cluster_domain,
        )
        etcd_dir = self.dir / "etcd"
        self._run(bins)
        self.wait_ready()
        assert self._client is not None
        self._client.close()
        self._client = None
        others = [p for n, p in self.procs.items() if n != "etcd"]
        stop_pids([(p.pid, p.start) for p in others], SEED_STOP_GRACE_S)
        etcd = self.procs["etcd"]
        stop_pids([(etcd.pid, etcd.start)], SEED_STOP_GRACE_S)  # last: it flushes its data
        self.procs.clear()
        self._ready = False
        entry = S.store(name, inputs, self.pki.dir, etcd_dir)
        for f in self.pki.dir.iterdir():
            f.unlink()
        shutil.rmtree(etcd_dir)
        return entry

    def _run(self, bins: dict[str, Path]) -> None:
        """etcd, kube-apiserver and (once the apiserver serves) kube-controller-manager."""
        t0 = self._t0
        # etcd and kube-apiserver start together (the apiserver retries etcd, as the two
        # static pods of kubeadm do)
        etcd = self._spawn("etcd", etcd_argv(bins["etcd"], self.dir / "etcd"))
        api = self._spawn(
            "kube-apiserver",
            apiserver_argv(bins["kube-apiserver"], self.cfg, self.pki, self.dir / "apiserver"),
        )
        wait_for("etcd /health", self._etcd_probe, timeout_s=20, procs=[etcd])
        self._mark("etcd", t0)
        c = self._client = self._stack.enter_context(self.client())
        # serving: every check of /readyz but the post-start hooks that poll once a second
        # (so pass a second late) and whose objects the run does not need yet: the system
        # priority classes (the pods here name none) and, when etcd's data is the kept
        # control plane's, the bootstrap RBAC roles (stored already: the hook finds them).
        # The controller manager starts meanwhile; the full /readyz is waited in wait_ready.
        exclude = (PRIORITY_CLASSES_HOOK, *((RBAC_HOOK,) if self.seeded else ()))
        wait_for(
            "kube-apiserver /readyz",
            lambda: self._readyz(c, exclude),
            timeout_s=60,
            procs=[etcd, api],
        )
        self._mark("kube-apiserver serving", t0)
        self._spawn(
            "kube-controller-manager",
            controller_manager_argv(
                bins["kube-controller-manager"], self.cfg, self.pki, self.dir / "kcm"
            ),
        )
        wait_for(
            "the kube-system namespace",
            lambda: None if c.get("v1", "Namespace", "kube-system") else "absent",
            timeout_s=20,
            procs=list(self.procs.values()),
        )

    def wait_ready(self) -> None:
        """Until kube-apiserver's every readiness check passes, kube-controller-manager is
        healthy and its controllers made the ``default`` service accounts (pods can be
        created). Idempotent."""
        if self._ready:
            return
        c, t0 = self._client, self._t0
        assert c is not None
        procs = list(self.procs.values())
        wait_for("kube-apiserver /readyz", lambda: self._readyz(c), timeout_s=60, procs=procs)
        self._mark("kube-apiserver", t0)
        wait_for("kube-controller-manager /healthz", self._kcm_probe, timeout_s=30, procs=procs)
        self._mark("kube-controller-manager", t0)
        wait_for(
            "the default and kube-system service accounts",
            lambda: self._service_accounts(c),
            timeout_s=30,
            procs=procs,
        )
        self._mark("service accounts", t0)
        self.timings.marks["ready"] = time.monotonic() - t0
        self._ready = True

    def _mark(self, stage: str, t0: float) -> None:
        self.timings.marks[stage] = time.monotonic() - t0
        if self.marks is not None:
            self.marks.mark(stage)

    def _netns(self) -> None:
        ns = self.cfg.ns
        self.journal.record("netns", name=ns)
        run(["ip", "netns", "add", ns])
        self._stack.callback(run, ["ip", "netns", "del", ns], check=False)
        cmds = ["link set lo up"]
        if self.cfg.vpc_ns:
            vpc, ifname = self.cfg.vpc_ns, self.cfg.vpc_if
            run(["ip", "-n", vpc, "link", "add", ifname, "type", "veth", "peer", "name", "eth0",
                 "netns", ns])  # fmt: skip
            # the vpc end goes with the control-plane namespace (its peer), nothing to undo
            run(
                ["ip", "-n", vpc, "-b", "-"],
                input_=f"link set {ifname} up\naddr add {VPC_GW}/32 dev {ifname}\n"
                f"route add {self.cfg.ip}/32 dev {ifname}\n",
            )
            cmds += [
                "link set eth0 up",
                f"addr add {self.cfg.ip}/32 dev eth0",
                f"route add {VPC_GW} dev eth0",
                f"route add default via {VPC_GW} dev eth0 src {self.cfg.ip}",
            ]
        else:
            cmds += [
                "link add cp0 type bridge",
                f"addr add {self.cfg.ip}/32 dev cp0",
                "link set cp0 up",
            ]
        run(["ip", "-n", ns, "-b", "-"], input_="\n".join(cmds) + "\n")

    def _spawn(self, name: str, argv: list[str]) -> Proc:
        proc = spawn(self.journal, name, argv, netns=self.cfg.ns, log=self.dir / f"{name}.log")
        self.procs[name] = proc
        self._stack.callback(stop_pid, proc.pid, proc.start, 5.0)
        return proc

    # --- probes ---------------------------------------------------------------------------
    def _http_get(self, port: int, path: str, context: ssl.SSLContext | None) -> tuple[int, str]:
        return http_get(self.cfg.ns, "127.0.0.1", port, path, context=context)

    def _etcd_probe(self) -> str | None:
        status, body = self._http_get(2379, "/health", None)
        return None if status == 200 and '"true"' in body else f"HTTP {status}: {body[:200]}"

    @staticmethod
    def _readyz(c: ApiClient, exclude: tuple[str, ...] = ()) -> str | None:
        query = urllib.parse.urlencode([("exclude", check) for check in exclude])
        status, body = c.raw("GET", f"/readyz?{query}" if query else "/readyz")
        text = body.decode(errors="replace")
        return None if status == 200 else f"HTTP {status}: {text[-300:]}"

    def _kcm_probe(self) -> str | None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # its self-signed serving cert, on its own loopback
        status, body = self._http_get(10257, "/healthz", ctx)
        return None if status == 200 else f"HTTP {status}: {body[-300:]}"

    @staticmethod
    def _service_accounts(c: ApiClient) -> str | None:
        for ns in ("default", "kube-system"):
            if c.get("v1", "ServiceAccount", "default", ns) is None:
                return f"no default service account in {ns} yet"
        return None
