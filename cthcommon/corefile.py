"""Corefile syntax both the scenario's checks and the backends' rendering rely on (pure)."""

from __future__ import annotations

import re

# a kubernetes plugin line, as the harness finds it to give the plugin its credentials
KUBERNETES_LINE = re.compile(r"^(\s*)kubernetes(\s[^{#]*)?(\{)?\s*(#.*)?$")


def has_kubernetes_plugin(text: str) -> bool:
    """A line of ``text`` enables the kubernetes plugin (pure)."""
    return any(KUBERNETES_LINE.match(line) for line in text.splitlines())
