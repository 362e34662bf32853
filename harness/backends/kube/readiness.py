"""Is it ready yet? Pure predicates over API objects; each returns None when ready, else why not."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from harness.backends.kube.placement import node_ready


def _name(obj: Mapping[str, Any]) -> str:
    return f"{obj.get('kind', 'object')}/{obj.get('metadata', {}).get('name', '?')}"


def nodes_not_ready(nodes: Sequence[Mapping[str, Any]], expected: int) -> str | None:
    if len(nodes) < expected:
        return f"{len(nodes)} of {expected} nodes registered"
    bad = [n["metadata"]["name"] for n in nodes if not node_ready(n)]
    return f"nodes not Ready: {', '.join(sorted(bad))}" if bad else None


def deployment_not_ready(dep: Mapping[str, Any] | None) -> str | None:
    if dep is None:
        return "deployment not found"
    spec, status = dep.get("spec", {}), dep.get("status") or {}
    want = spec.get("replicas", 1)
    gen, seen = dep["metadata"].get("generation", 0), status.get("observedGeneration", 0)
    if seen < gen:
        return f"{_name(dep)}: generation {gen} not observed yet ({seen})"
    updated, ready = status.get("updatedReplicas") or 0, status.get("readyReplicas") or 0
    total = status.get("replicas") or 0
    if updated < want or ready < want or total > want:
        return f"{_name(dep)}: {ready}/{want} ready, {updated} updated, {total} total"
    return None


def daemonset_not_ready(ds: Mapping[str, Any] | None) -> str | None:
    if ds is None:
        return "daemonset not found"
    status = ds.get("status") or {}
    gen, seen = ds["metadata"].get("generation", 0), status.get("observedGeneration", 0)
    want = status.get("desiredNumberScheduled") or 0
    ready = status.get("numberReady") or 0
    updated = status.get("updatedNumberScheduled") or 0
    if seen < gen or want == 0 or ready < want or updated < want:
        return f"{_name(ds)}: {ready}/{want} ready, {updated} updated (generation {seen}/{gen})"
    return None


def pods_not_ready(pods: Sequence[Mapping[str, Any]], expected: int) -> str | None:
    if len(pods) < expected:
        return f"{len(pods)} of {expected} pods exist"
    waiting: list[str] = []
    for pod in pods:
        status = pod.get("status") or {}
        if status.get("phase") in ("Failed", "Succeeded"):
            return f"pod {pod['metadata']['name']} ended ({status.get('phase')})"
        conds = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
        if conds.get("Ready") != "True":
            waiting.append(pod["metadata"]["name"])
    return f"pods not Ready: {', '.join(sorted(waiting))}" if waiting else None


# a container waiting for its image: retried by the kubelet (pull failures) or never (a name
# it cannot parse, a never-pull policy with the image absent)
PULL_RETRIED = frozenset({"ErrImagePull", "ImagePullBackOff"})
PULL_FINAL = frozenset({"InvalidImageName", "ErrImageNeverPull"})
PULL_GRACE_S = 30.0  # how long retried pulls may fail before the wait gives up on them


def image_waits(pods: Sequence[Mapping[str, Any]]) -> dict[str, tuple[str, str, str]]:
    """``pod/container`` -> (image, reason, message) for every container (init containers
    too) waiting for an image it cannot get (pure)."""
    out: dict[str, tuple[str, str, str]] = {}
    for pod in pods:
        status = pod.get("status") or {}
        for cs in [*(status.get("initContainerStatuses") or []),
                   *(status.get("containerStatuses") or [])]:  # fmt: skip
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason", "")
            if reason in PULL_RETRIED | PULL_FINAL:
                key = f"{pod['metadata']['name']}/{cs.get('name', '?')}"
                out[key] = (cs.get("image", "?"), reason, waiting.get("message", ""))
    return out


class PullWatch:
    """Fails a wait early on images the nodes cannot get: at once for a final reason, after
    :data:`PULL_GRACE_S` of failed pulls otherwise (a registry's hiccup is retried by the
    kubelet and may pass). Call with the pods and the time; None, or why the wait is over."""

    def __init__(self, grace_s: float = PULL_GRACE_S) -> None:
        self.grace_s = grace_s
        self._since: dict[str, float] = {}

    def __call__(self, pods: Sequence[Mapping[str, Any]], now: float) -> str | None:
        waits = image_waits(pods)
        self._since = {k: self._since.get(k, now) for k in waits}
        stuck = sorted(
            k
            for k, (_, reason, _) in waits.items()
            if reason in PULL_FINAL or now - self._since[k] >= self.grace_s
        )
        if not stuck:
            return None
        image, reason, message = waits[stuck[0]]
        others = f" (and {len(stuck) - 1} more)" if len(stuck) > 1 else ""
        return (
            f"pod {stuck[0]}{others} cannot get its image {image}: {reason}"
            + (f": {message}" if message else "")
            + ". The nodes pull every image the run uses: on an existing cluster, push it "
            "where they can pull from and name it (--loadgen-image REPO, --image ROLE=REF)"
        )
