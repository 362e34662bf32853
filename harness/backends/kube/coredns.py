"""CoreDNS changes as pure text and patch bodies: cache on/off, forward concurrency, replicas,
placement, and a server block that answers the scenario's external names.

The harness saves the live Corefile and Deployment fields before a change and puts them back
verbatim afterwards, so these functions never need an inverse.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cthcommon.errors import BackendError
from harness.backends.kube.placement import HOSTNAME_LABEL
from harness.plan.types import CoreDNSPlan

ROOT_KEYS = (".:53", ".")
RESTART_ANNOTATION = "conntrack-harness/restarted-at"
CACHE_LINE = "cache 30"


def _root_block(lines: list[str]) -> tuple[int, int]:
    """(index of the root block's opening line, index of its closing brace)."""
    depth = 0
    start = -1
    for i, raw in enumerate(lines):
        line = raw.split("#", 1)[0].strip()
        if depth == 0 and line.endswith("{") and line[:-1].strip() in ROOT_KEYS:
            start = i
        opens, closes = line.count("{"), line.count("}")
        depth += opens - closes
        if start >= 0 and depth == 0 and i > start:
            return start, i
    raise BackendError("the CoreDNS Corefile has no root server block ('.:53 { ... }')")


def _indent(lines: list[str], start: int, end: int) -> str:
    for raw in lines[start + 1 : end]:
        if raw.strip():
            return raw[: len(raw) - len(raw.lstrip())]
    return "    "


def _plugin_span(lines: list[str], start: int, end: int, plugin: str) -> tuple[int, int] | None:
    """Lines [a, b] of a depth-1 plugin directive (with its own block, if it has one)."""
    depth = 0
    for i in range(start + 1, end):
        line = lines[i].split("#", 1)[0].strip()
        if depth == 0 and re.match(rf"^{re.escape(plugin)}(\s|$|\{{)", line):
            if not line.endswith("{"):
                return i, i
            d = 0
            for j in range(i, end):
                d += lines[j].count("{") - lines[j].count("}")
                if d == 0:
                    return i, j
            raise BackendError(f"unbalanced braces in the Corefile's {plugin} block")
        depth += line.count("{") - line.count("}")
    return None


def set_cache(corefile: str, enabled: bool) -> str:
    lines = corefile.splitlines()
    start, end = _root_block(lines)
    span = _plugin_span(lines, start, end, "cache")
    if enabled and span is None:
        lines.insert(end, _indent(lines, start, end) + CACHE_LINE)
    elif not enabled and span is not None:
        del lines[span[0] : span[1] + 1]
    return "\n".join(lines) + "\n"


def set_max_concurrent(corefile: str, limit: int) -> str:
    lines = corefile.splitlines()
    start, end = _root_block(lines)
    span = _plugin_span(lines, start, end, "forward")
    if span is None:
        raise BackendError("the CoreDNS root block has no 'forward' plugin to limit")
    indent = lines[span[0]][: len(lines[span[0]]) - len(lines[span[0]].lstrip())]
    inner = indent + "   "
    a, b = span
    if a == b:  # forward . /etc/resolv.conf  ->  open a block for the option
        lines[a : a + 1] = [
            lines[a].rstrip() + " {",
            f"{inner}max_concurrent {limit}",
            indent + "}",
        ]
    else:
        for i in range(a + 1, b):
            if lines[i].strip().startswith("max_concurrent"):
                lines[i] = f"{inner}max_concurrent {limit}"
                break
        else:
            lines.insert(b, f"{inner}max_concurrent {limit}")
    return "\n".join(lines) + "\n"


def external_names_blocks(names: Mapping[str, str]) -> str:
    """One server block per external name, answered from a hosts table.

    A separate block (not a second ``hosts`` in the root block: CoreDNS allows a plugin once per
    block, and a Corefile may already have one) answers A with the scenario's address and AAAA
    with no data, as the netns backend's upstream does; nothing is forwarded off-cluster.
    """
    out: list[str] = []
    for name, addr in sorted(names.items()):
        fq = name.rstrip(".")
        out += [
            f"{fq}:53 {{",
            "    errors",
            "    hosts {",
            f"        {addr} {fq}",
            "        ttl 30",
            "    }",
            "}",
        ]
    return "\n".join(out) + ("\n" if out else "")


def render_corefile(original: str, settings: CoreDNSPlan, external: Mapping[str, str]) -> str:
    text = original if settings.cache is None else set_cache(original, settings.cache)
    if settings.max_concurrent is not None:
        text = set_max_concurrent(text, settings.max_concurrent)
    return text.rstrip("\n") + "\n" + external_names_blocks(external)


def configmap_patch(corefile: str) -> dict[str, Any]:
    return {"data": {"Corefile": corefile}}


def deployment_patch(
    replicas: int, node_selector: Mapping[str, str] | None, restarted_at: str
) -> dict[str, Any]:
    """Merge patch: replicas, placement, and a template annotation that restarts the pods so a
    new Corefile takes effect now (CoreDNS's ``reload`` would take up to its interval)."""
    template: dict[str, Any] = {"metadata": {"annotations": {RESTART_ANNOTATION: restarted_at}}}
    template["spec"] = {"nodeSelector": dict(node_selector) if node_selector else None}
    return {"spec": {"replicas": replicas, "template": template}}


def deployment_restore_patch(saved: Mapping[str, Any], restarted_at: str) -> dict[str, Any]:
    """Merge patch that puts back saved replicas and nodeSelector (None removes ours).

    A merge patch merges maps key by key, so a saved selector (kubeadm's
    ``kubernetes.io/os: linux``) alone would keep the hostname key the harness added beside
    it: that key is removed explicitly unless the saved selector had it (found against a real
    kube-apiserver)."""
    spec = saved.get("spec", {})
    tmpl = spec.get("template", {}).get("spec", {})
    saved_sel = tmpl.get("nodeSelector")
    selector = None if saved_sel is None else {HOSTNAME_LABEL: None, **saved_sel}
    return {
        "spec": {
            "replicas": spec.get("replicas"),
            "template": {
                "metadata": {"annotations": {RESTART_ANNOTATION: restarted_at}},
                "spec": {"nodeSelector": selector},
            },
        }
    }
