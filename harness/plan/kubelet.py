"""A client pod's resolver settings by kubelet's rules, and the names its load looks up (pure).

kubelet, for ``dnsPolicy: ClusterFirst``, starts from the cluster DNS nameserver, the search
list ``<ns>.svc.<domain> svc.<domain> <domain>`` and ``options ndots:5``, then merges the pod's
``dnsConfig`` into it: nameservers and searches are appended (duplicates dropped), options
override by name. For ``dnsPolicy: None`` the pod's ``dnsConfig`` is all there is. The host's
own search domains, which kubelet also appends under ClusterFirst, are left out on purpose: the
same scenario must send the same queries on every machine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from cthcommon.errors import BadInput
from cthcommon.resolvconf import MAXNS
from harness.plan.types import CLUSTER_DNS, NODELOCAL, PodDNS
from harness.scenario.model import DNSConfig

# Kubernetes' own limits on dnsConfig (validation.go): 32 search domains, 2048 characters.
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048
CLUSTER_FIRST_OPTIONS: tuple[tuple[str, str | None], ...] = (("ndots", "5"),)


def default_searches(namespace: str, domain: str) -> tuple[str, ...]:
    return (f"{namespace}.svc.{domain}", f"svc.{domain}", domain)


def _merge_options(
    *layers: Iterable[tuple[str, str | None]],
) -> tuple[tuple[str, str | None], ...]:
    out: dict[str, str | None] = {}
    for layer in layers:
        for name, value in layer:
            out[name] = value
    return tuple(out.items())


def pod_dns(
    config: DNSConfig,
    *,
    namespace: str,
    domain: str,
    nodelocal: bool = False,
    extra_options: Sequence[tuple[str, str | None]] = (),
) -> PodDNS:
    """What kubelet writes for this dnsConfig; ``nodelocal``: kubelet's cluster DNS is the
    node-local cache (``--cluster-dns=169.254.20.10``); ``extra_options``: the resolver-option
    remediation, merged last."""
    dns_options = [(o.name, o.value) for o in config.options]
    searches_given = [s.rstrip(".") for s in config.searches or []]
    if config.policy == "ClusterFirst":
        nameservers = [CLUSTER_DNS, *config.nameservers]
        searches = [*default_searches(namespace, domain), *searches_given]
        options = _merge_options(CLUSTER_FIRST_OPTIONS, dns_options, extra_options)
    else:
        nameservers = list(config.nameservers)
        searches = searches_given
        options = _merge_options(dns_options, extra_options)
    if nodelocal:
        nameservers = [NODELOCAL if ns == CLUSTER_DNS else ns for ns in nameservers]
        if NODELOCAL not in nameservers:
            nameservers.insert(0, NODELOCAL)
    searches = list(dict.fromkeys(searches))
    if len(searches) > MAX_SEARCHES or len(" ".join(searches)) > MAX_SEARCH_CHARS:
        raise BadInput(
            f"Kubernetes allows at most {MAX_SEARCHES} search domains, {MAX_SEARCH_CHARS} "
            "characters in all",
            field="cluster.dns_config.searches",
            value=searches,
        )
    return PodDNS(
        nameservers=tuple(dict.fromkeys(nameservers))[:MAXNS],
        searches=tuple(searches),
        options=options,
    )


def expand_names(names: Sequence[str], count: int) -> tuple[tuple[str, ...], int, bool]:
    """A name with ``{n}`` becomes ``count`` distinct names (cache-busting, e.g. random
    subdomains), interleaved with the others in the order the engine cycles through them.
    Returns (names, names per index, expanded)."""
    if not any("{n}" in n for n in names):
        return tuple(names), len(names), False
    out = tuple(n.replace("{n}", str(i)) for i in range(max(1, count)) for n in names)
    return out, len(names), True


def absolute_name(name: str, *, namespace: str, domain: str, external: Mapping[str, str]) -> str:
    """The FQDN rule: the absolute name (trailing dot, no search list) a lookup of ``name``
    from a pod in ``namespace`` was meant to find.

    - already absolute: unchanged;
    - a name the upstream resolver serves (``external_names``), the cluster domain itself or a
      name under it: itself, made absolute;
    - one label (a Service): ``<name>.<namespace>.svc.<domain>.``;
    - two labels (``service.namespace``): ``<name>.svc.<domain>.``;
    - anything longer: itself, made absolute.
    """
    if name.endswith("."):
        return name
    bare = name.rstrip(".")
    if bare in external or bare == domain or bare.endswith(f".{domain}"):
        return bare + "."
    dots = bare.count(".")
    if dots == 0:
        return f"{bare}.{namespace}.svc.{domain}."
    if dots == 1:
        return f"{bare}.svc.{domain}."
    return bare + "."
