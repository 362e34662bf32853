"""``--harness-backend kubeconfig``: an existing cluster, e.g. to validate before an upgrade.

No cluster lifecycle. Everything the run creates carries the run's labels and is removed at
the end. Steps that change what other workloads see (node sysctls, the injected fault, CoreDNS
changes, installing NodeLocal DNSCache) are refused unless ``allow_disruptive`` is set; the
refusal lists them. Images are not built here: the loadgen images must be pullable by the
cluster (``images``, ``--image``). Node counters are read through a hostNetwork probe pod on
each node: unprivileged, or privileged with ``allow_disruptive`` (the table, rules and fault
counters too).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from cthcommon.errors import BackendError, CommandFailed, UnsafeRequest
from harness.backends.kube import commands, nodelocaldns, readiness, tuner
from harness.backends.kube.cluster import (
    API_POLL_S,
    WORKLOAD_STAGE,
    Images,
    KubeCluster,
    Settings,
    _apply_all,
    pull_watch,
    realize_workload,
)
from harness.backends.kube.names import (
    LABEL_ROLE,
    run_namespace,
    run_selector,
)
from harness.backends.kube.nodeaccess import ProbeNodeAccess
from harness.backends.kube.placement import NodeMap, map_schedulable
from harness.backends.kube.proc import Runner, kubectl_dir, subprocess_runner
from harness.backends.stages import Notice, Stages
from harness.kubeapi.client import KubeAPI
from harness.kubeapi.kubeconfig import client_for
from harness.kubeapi.wait import wait_for
from harness.plan.types import RunPlan


def disruptive_steps(run: RunPlan) -> list[str]:
    """What this run would change beyond its own namespace, in words (pure)."""
    steps: list[str] = []
    if tuner.node_sysctls(run.sysctls, include_global=True) or run.host.conntrack_max:
        steps.append("set conntrack sysctls on the nodes (node_sysctls/host)")
    if any(p.coredns != run.coredns for p in run.phases) or run.coredns.max_concurrent:
        steps.append("change CoreDNS (Corefile, replicas, placement)")
    if run.external_lookups:
        steps.append(
            "add server blocks for the scenario's external names to CoreDNS (else "
            "their lookups would leave the cluster) and restart it"
        )
    for p in run.phases:
        sysctls, ruleset = tuner.phase_changes(p, "x", include_global=True)
        if sysctls:
            steps.append(f"phase {p.name}: set conntrack sysctls on the nodes")
        if ruleset:
            steps.append(f"phase {p.name}: INJECT a race-window packet drop on the nodes")
        if p.nodelocal:
            steps.append(
                f"phase {p.name}: install NodeLocal DNSCache (intercepts kube-dns on every node)"
            )
    return list(dict.fromkeys(steps))


def preflight(kubeconfig: str | None, runner: Runner = subprocess_runner) -> None:
    """Before anything is created: kubectl is on PATH, else the pinned one is put first on
    it, as kind does (MissingTool, exit 2, when neither is there), and the API server answers
    (BackendError, exit 3), within a few seconds rather than a client's long retries."""
    if (kubectl := kubectl_dir()) is not None:
        os.environ["PATH"] = os.pathsep.join([str(kubectl), os.environ.get("PATH", "")])
    try:
        runner(commands.kubectl_server_version(kubeconfig), timeout_s=30)
    except CommandFailed as e:
        where = kubeconfig or "$KUBECONFIG or ~/.kube/config"
        raise BackendError(
            f"the API server of {where} does not answer: {e.stderr.strip()[-300:] or e}"
        ) from None


def check_allowed(plan: RunPlan, *, allow_disruptive: bool) -> None:
    """Refuse, naming every step, a scenario that would disturb the cluster unless allowed."""
    steps = disruptive_steps(plan)
    if steps and not allow_disruptive:
        raise UnsafeRequest(
            "this scenario changes the existing cluster beyond its own namespace: "
            + "; ".join(steps)
            + ". Re-run with --allow-disruptive on a cluster you may disturb",
            field="--allow-disruptive",
            value=False,
        )


@dataclass
class KubeconfigSettings:
    images: Images
    kubeconfig: str | None = None
    context: str | None = None
    allow_disruptive: bool = False
    timeout_s: float = 300.0


class KubeconfigBackend:
    name = "kubeconfig"

    def __init__(
        self,
        settings: KubeconfigSettings,
        *,
        runner: Runner = subprocess_runner,
        api_factory: Callable[[str | None, str | None], KubeAPI] = client_for,
        notice: Notice | None = None,
    ) -> None:
        self.settings = settings
        self.stages = Stages(notice, self.name)
        self._run = runner
        self._api_factory = api_factory
        self._plan: RunPlan | None = None

    def check_allowed(self, plan: RunPlan) -> None:
        check_allowed(plan, allow_disruptive=self.settings.allow_disruptive)

    def components(self) -> dict[str, dict[str, str]]:
        """What the backend knows that the cluster's objects do not say: a NodeLocal
        stand-in given with ``--image node-cache-stand-in`` (labelled as such)."""
        stand_in, plan = self.settings.images.nodelocal_stand_in, self._plan
        if stand_in is None or plan is None or not any(p.nodelocal for p in plan.phases):
            return {}
        return {
            "node-cache": nodelocaldns.stand_in_component(
                stand_in, "not run", "given with --image node-cache-stand-in"
            )
        }

    @contextmanager
    def realize(self, plan: RunPlan, run_id: str) -> Iterator[KubeCluster]:
        self.check_allowed(plan)  # refuse before touching the cluster
        self._plan = plan
        s0 = self.settings
        api = self._api_factory(s0.kubeconfig, s0.context)
        nodes = map_schedulable(plan.cluster.node_names(), api.list("v1", "Node"))
        ns = run_namespace(run_id)
        pods: dict[str, str] = {}
        access = ProbeNodeAccess(
            self._run, s0.kubeconfig, ns, pods.__getitem__, privileged=s0.allow_disruptive
        )
        s = Settings(
            backend=self.name,
            run_id=run_id,
            plan=plan,
            api=api,
            runner=self._run,
            kubeconfig=s0.kubeconfig,
            images=s0.images,
            access=access,
            host=None,
            timeout_s=s0.timeout_s,
            coredns_baseline=s0.allow_disruptive,
        )
        st = self.stages
        with ExitStack() as stack:
            down = st.teardown(stack)
            try:
                with st.stage(WORKLOAD_STAGE):
                    cluster = stack.enter_context(realize_workload(s, nodes))
                with st.stage("node probe pods Ready"):
                    _apply_all(
                        s,
                        stack,
                        [
                            tuner.probe_daemonset(
                                run_id, ns, nodes, s0.images.glibc, privileged=s0.allow_disruptive
                            )
                        ],
                        wait_gone=True,
                    )
                    pods.update(probe_pods(api, run_id, ns, nodes, s0.timeout_s))
                yield cluster
            except BaseException as e:
                down.begin(e)
                raise
            finally:
                down.begin()


def probe_pods(
    api: KubeAPI, run_id: str, ns: str, nodes: NodeMap, timeout_s: float
) -> dict[str, str]:
    """node name -> the Ready probe pod on it."""
    selector = f"{run_selector(run_id)},{LABEL_ROLE}=node-probe"
    real = set(nodes.nodes.values())
    wait_for(
        "node probe pods",
        lambda: readiness.pods_not_ready(api.list("v1", "Pod", ns, selector), len(real)),
        timeout_s=timeout_s,
        interval_s=API_POLL_S,
        stuck=pull_watch(api, ns),
    )
    found = {
        p["spec"].get("nodeName"): p["metadata"]["name"]
        for p in api.list("v1", "Pod", ns, selector)
    }
    missing = real - set(found)
    if missing:
        raise BackendError(f"no probe pod on nodes {sorted(missing)}")
    return {n: found[n] for n in real}
