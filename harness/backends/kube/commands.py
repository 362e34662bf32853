"""Command lines for the kind, kubectl and docker CLIs. Pure: argv lists, nothing is run here."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from cthcommon.errors import BadInput

KIND = "kind"
KUBECTL = "kubectl"
DOCKER = "docker"


def check_cluster_name(cluster: str) -> str:
    if not cluster or not all(c.isalnum() or c in "-." for c in cluster):
        raise BadInput(
            "a kind cluster name is letters, digits, '-' and '.'",
            field="cluster_name",
            value=cluster,
        )
    return cluster


# --- kind -----------------------------------------------------------------------------------
def kind_create(
    cluster: str,
    config_path: str,
    kubeconfig: str,
    *,
    image: str | None = None,
    wait_s: int = 0,
    retain: bool = False,
) -> list[str]:
    argv = [
        KIND,
        "create",
        "cluster",
        "--name",
        check_cluster_name(cluster),
        "--config",
        config_path,
        "--kubeconfig",
        kubeconfig,
        "--wait",
        f"{wait_s}s",
    ]
    if image:
        argv += ["--image", image]
    if retain:
        argv.append("--retain")
    return argv


def kind_delete(cluster: str, kubeconfig: str) -> list[str]:
    return [
        KIND,
        "delete",
        "cluster",
        "--name",
        check_cluster_name(cluster),
        "--kubeconfig",
        kubeconfig,
    ]


def kind_get_clusters() -> list[str]:
    return [KIND, "get", "clusters"]


def kind_get_nodes(cluster: str) -> list[str]:
    return [KIND, "get", "nodes", "--name", check_cluster_name(cluster)]


def kind_export_kubeconfig(cluster: str, kubeconfig: str) -> list[str]:
    return [
        KIND,
        "export",
        "kubeconfig",
        "--name",
        check_cluster_name(cluster),
        "--kubeconfig",
        kubeconfig,
    ]


def kind_version() -> list[str]:
    return [KIND, "version"]


def kind_load_image(cluster: str, image: str, nodes: Sequence[str] = ()) -> list[str]:
    argv = [KIND, "load", "docker-image", image, "--name", check_cluster_name(cluster)]
    if nodes:
        argv += ["--nodes", ",".join(nodes)]
    return argv


# --- docker ---------------------------------------------------------------------------------
def docker_info() -> list[str]:
    """Fails unless the daemon answers (the CLI alone is not enough)."""
    return [DOCKER, "info", "--format", "{{.ServerVersion}}"]


def docker_ps_kind_nodes(cluster: str) -> list[str]:
    """``<container> <image>`` per node container of a kind cluster (kind labels them)."""
    return [
        DOCKER,
        "ps",
        "--all",
        "--filter",
        f"label=io.x-k8s.kind.cluster={check_cluster_name(cluster)}",
        "--format",
        "{{.Names}} {{.Image}}",
    ]


def docker_build(dockerfile: str, tag: str, context: str = ".") -> list[str]:
    return [DOCKER, "build", "--file", dockerfile, "--tag", tag, context]


def docker_exec(container: str, argv: Sequence[str]) -> list[str]:
    return [DOCKER, "exec", container, *argv]


def docker_init_pid(container: str) -> list[str]:
    """The container's init process, as the host numbers it."""
    return [DOCKER, "inspect", "--format", "{{.State.Pid}}", container]


def node_conntrack_flush(container: str) -> list[str]:
    return docker_exec(container, ["conntrack", "-F"])


def forget_flows_argv(sources: Sequence[str], destinations: Sequence[str]) -> list[str]:
    """One command, run in a node's network namespace, that deletes the conntrack entries whose
    original source is one of ``sources`` or whose original destination is one of
    ``destinations``, and nothing else (each ``conntrack -D`` says how many it deleted; one
    that found none fails, which does not stop the others). Addresses only: anything else is
    refused before it reaches a shell."""
    parts = [f"conntrack -D -s {_address(a)}" for a in sources]
    parts += [f"conntrack -D -d {_address(a)}" for a in destinations]
    return ["sh", "-c", "; ".join([*parts, "true"])]


def deleted_count(output: str) -> int:
    """The entries ``conntrack -D`` commands said they deleted, summed (pure)."""
    return sum(int(n) for n in DELETED.findall(output))


DELETED = re.compile(r"(\d+) flow entries have been deleted")


def _address(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise BadInput(f"not an IP address: {text!r}") from None


def node_netns_link(container: str) -> list[str]:
    """``net:[INODE]``: the node's network namespace, as 'table full' kernel lines name it."""
    return docker_exec(container, ["readlink", "/proc/self/ns/net"])


# --- kubectl --------------------------------------------------------------------------------
def kubectl_server_version(kubeconfig: str | None, timeout_s: int = 10) -> list[str]:
    """Fails unless the API server answers within ``timeout_s``."""
    out = [KUBECTL]
    if kubeconfig:
        out += ["--kubeconfig", kubeconfig]
    return [*out, "get", "--raw", "/version", f"--request-timeout={timeout_s}s"]


def kubectl_exec(
    kubeconfig: str | None,
    namespace: str,
    pod: str,
    argv: Sequence[str],
    *,
    stdin: bool = False,
    container: str | None = None,
) -> list[str]:
    out = [KUBECTL]
    if kubeconfig:
        out += ["--kubeconfig", kubeconfig]
    out += ["--namespace", namespace, "exec"]
    if stdin:
        out.append("-i")
    out.append(pod)
    if container:
        out += ["-c", container]
    return [*out, "--", *argv]
