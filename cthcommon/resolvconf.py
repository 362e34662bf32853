"""resolv.conf: parse, render, and expand names through the search list the way glibc does.

Pure logic: no files are read here. ``ResolvConf.parse`` takes text, ``render`` returns text.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from cthcommon.errors import BadInput

# glibc's limits and defaults (resolv.h): MAXNS=3, RES_TIMEOUT=5, RES_DFLRETRY=2,
# RES_MAXNDOTS=15, RES_MAXRETRANS=30, RES_MAXRETRY=5.
MAXNS = 3
DEFAULT_TIMEOUT = 5
DEFAULT_ATTEMPTS = 2
DEFAULT_NDOTS = 1
MAX_NDOTS = 15
MAX_TIMEOUT = 30
MAX_ATTEMPTS = 5
MAX_SEARCH = 32

FLAG_OPTIONS = frozenset(
    {
        "rotate",
        "single-request",
        "single-request-reopen",
        "use-vc",
        "edns0",
        "no-aaaa",
        "trust-ad",
        "no-tld-query",
        "inet6",
        "debug",
        "no-reload",
    }
)
VALUE_OPTIONS = {
    "ndots": (0, MAX_NDOTS),
    "timeout": (1, MAX_TIMEOUT),
    "attempts": (1, MAX_ATTEMPTS),
}


@dataclass(frozen=True)
class ResolvConf:
    """The parts of resolv.conf a stub resolver acts on."""

    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    ndots: int = DEFAULT_NDOTS
    timeout: int = DEFAULT_TIMEOUT
    attempts: int = DEFAULT_ATTEMPTS
    flags: frozenset[str] = frozenset()
    unknown_options: tuple[str, ...] = ()
    ignored_lines: tuple[str, ...] = field(default=(), compare=False)

    # --- flags -----------------------------------------------------------------------
    @property
    def single_request(self) -> bool:
        return "single-request" in self.flags

    @property
    def single_request_reopen(self) -> bool:
        return "single-request-reopen" in self.flags

    @property
    def use_vc(self) -> bool:
        return "use-vc" in self.flags

    @property
    def rotate(self) -> bool:
        return "rotate" in self.flags

    # --- construction ----------------------------------------------------------------
    @classmethod
    def build(
        cls,
        nameservers: list[str] | tuple[str, ...],
        search: list[str] | tuple[str, ...] = (),
        options: Mapping[str, str | int | None] | None = None,
    ) -> ResolvConf:
        """Build from Kubernetes-style dnsConfig parts, validating every field."""
        lines = [f"nameserver {ns}" for ns in nameservers]
        if search:
            lines.append("search " + " ".join(search))
        for name, value in (options or {}).items():
            lines.append(f"options {name}" if value is None else f"options {name}:{value}")
        conf = cls.parse("\n".join(lines), strict=True)
        if len(conf.nameservers) != len(nameservers):
            raise BadInput(
                f"at most {MAXNS} nameservers are used by glibc",
                field="nameservers",
                value=list(nameservers),
            )
        return conf

    @classmethod
    def parse(cls, text: str, *, strict: bool = False) -> ResolvConf:
        """Parse resolv.conf text as glibc does (last search/domain line wins).

        With ``strict`` bad values raise :class:`BadInput`; otherwise they are kept in
        ``ignored_lines``, as glibc silently ignores them.
        """
        nameservers: list[str] = []
        search: tuple[str, ...] = ()
        ndots, timeout, attempts = DEFAULT_NDOTS, DEFAULT_TIMEOUT, DEFAULT_ATTEMPTS
        flags: set[str] = set()
        unknown: list[str] = []
        ignored: list[str] = []

        def bad(msg: str, fld: str, value: object, allowed: object = None) -> None:
            if strict:
                raise BadInput(msg, field=fld, value=value, allowed=allowed)
            ignored.append(str(value))

        for raw in text.splitlines():
            line = raw.split("#", 1)[0].split(";", 1)[0].strip()
            if not line:
                continue
            key, _, rest = line.partition(" ")
            words = rest.split()
            if key == "nameserver":
                if not words:
                    bad("nameserver needs an address", "nameservers", raw)
                    continue
                try:
                    ipaddress.ip_address(words[0])
                except ValueError:
                    bad("not an IP address", "nameservers", words[0])
                    continue
                if len(nameservers) < MAXNS:
                    nameservers.append(words[0])
                elif strict:
                    bad(f"at most {MAXNS} nameservers", "nameservers", words[0])
            elif key in ("search", "domain"):
                if len(words) > MAX_SEARCH:
                    bad(f"at most {MAX_SEARCH} search domains", "search", words)
                    words = words[:MAX_SEARCH]
                search = tuple(w.rstrip(".") for w in words if w.rstrip("."))
            elif key == "options":
                for opt in words:
                    name, sep, val = opt.partition(":")
                    if name in VALUE_OPTIONS and sep:
                        lo, hi = VALUE_OPTIONS[name]
                        if not (val.isascii() and val.isdigit()):
                            bad(
                                "option value must be a whole number",
                                f"options.{name}",
                                opt,
                                f"{lo}..{hi}",
                            )
                            continue
                        # glibc clamps to the maximum rather than rejecting.
                        # (more digits than any limit: no int() of a 5,000-digit string)
                        v = int(val) if len(val) <= 9 else hi + 1
                        n = min(v, hi)
                        if strict and not lo <= v <= hi:
                            bad("option value out of range", f"options.{name}", val, f"{lo}..{hi}")
                        n = max(n, lo)
                        if name == "ndots":
                            ndots = n
                        elif name == "timeout":
                            timeout = n
                        else:
                            attempts = n
                    elif name in FLAG_OPTIONS and not sep:
                        flags.add(name)
                    else:
                        unknown.append(opt)
            elif strict:
                bad(
                    "unknown resolv.conf keyword",
                    "resolv.conf",
                    key,
                    "nameserver, search, domain, options",
                )
            else:
                ignored.append(raw)
        return cls(
            nameservers=tuple(nameservers),
            search=search,
            ndots=ndots,
            timeout=timeout,
            attempts=attempts,
            flags=frozenset(flags),
            unknown_options=tuple(unknown),
            ignored_lines=tuple(ignored),
        )

    def render(self) -> str:
        """resolv.conf text, as kubelet writes it for a pod's dnsConfig."""
        out = [f"nameserver {ns}" for ns in self.nameservers]
        if self.search:
            out.append("search " + " ".join(self.search))
        opts: list[str] = []
        if self.ndots != DEFAULT_NDOTS:
            opts.append(f"ndots:{self.ndots}")
        if self.timeout != DEFAULT_TIMEOUT:
            opts.append(f"timeout:{self.timeout}")
        if self.attempts != DEFAULT_ATTEMPTS:
            opts.append(f"attempts:{self.attempts}")
        opts.extend(sorted(self.flags))
        opts.extend(self.unknown_options)
        if opts:
            out.append("options " + " ".join(opts))
        return "\n".join(out) + "\n"

    def with_options(self, **changes: object) -> ResolvConf:
        return replace(self, **changes)  # type: ignore[arg-type]

    def with_flag(self, flag: str) -> ResolvConf:
        if flag not in FLAG_OPTIONS:
            raise BadInput(
                "unknown resolver option", field="options", value=flag, allowed=sorted(FLAG_OPTIONS)
            )
        return replace(self, flags=self.flags | {flag})


def search_candidates(name: str, conf: ResolvConf) -> list[str]:
    """The absolute names glibc's ``res_search`` tries for ``name``, in order.

    - A trailing dot makes the name absolute: it alone is tried.
    - With ``dots >= ndots`` the name is tried as-is first, then with each search domain.
    - Otherwise each search domain is tried first and the name as-is last.
    - A single-label name is never tried as-is when ``no-tld-query`` is set.
    """
    if not name or name == ".":
        raise BadInput("empty name", field="name", value=name)
    if name.endswith("."):
        return [name]
    dots = name.count(".")
    as_is = name + "."
    with_search = [f"{name}.{d}." for d in conf.search]
    allow_as_is = not ("no-tld-query" in conf.flags and dots == 0)
    if dots >= conf.ndots:
        return [as_is, *with_search]
    return [*with_search, as_is] if allow_as_is else with_search
