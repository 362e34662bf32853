"""Resolver models: one module per real-world stub resolver. See :mod:`.base`."""

from __future__ import annotations

from collections.abc import Callable

from cthcommon.errors import BadInput
from cthcommon.resolvconf import ResolvConf
from loadgen.dns.models.base import FAMILIES, Family, ResolverModel
from loadgen.dns.models.cares import CAresResolver
from loadgen.dns.models.glibc import GlibcResolver
from loadgen.dns.models.go import GoResolver
from loadgen.dns.models.musl import MuslResolver
from loadgen.dns.models.sequential import SequentialResolver

MODELS: dict[str, Callable[[ResolvConf, Family], ResolverModel]] = {
    "glibc": GlibcResolver,
    "musl": MuslResolver,
    "go": GoResolver,
    "c-ares": CAresResolver,
    "sequential": SequentialResolver,
}


def make_resolver(kind: str, conf: ResolvConf, family: Family = "any") -> ResolverModel:
    """A fresh resolver "process" of model ``kind`` reading ``conf``, asking for ``family``
    ("any": A and AAAA; "ipv4": A only)."""
    if family not in FAMILIES:
        raise BadInput(
            "unknown address family", field="dns.family", value=family, allowed=list(FAMILIES)
        )
    try:
        factory = MODELS[kind]
    except KeyError:
        raise BadInput(
            "unknown resolver model", field="dns.resolver", value=kind, allowed=sorted(MODELS)
        ) from None
    return factory(conf, family)


__all__ = ["MODELS", "ResolverModel", "make_resolver"]
