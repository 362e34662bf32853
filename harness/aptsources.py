"""This machine's Debian mirror, read from apt's own configuration.

The harness names no package mirror of its own: a machine has the mirror (or the proxy, or
the local copy) its administrator configured, and whatever debootstrap fetches comes from
there. apt reads ``sources.list`` and ``sources.list.d/*.list`` (one-line format) and
``sources.list.d/*.sources`` (deb822 format); other file names are ignored, as apt ignores
them. Pure except :func:`debian_mirror`, which reads the files.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cthcommon.errors import MissingTool

APT_DIR = Path("/etc/apt")

# Debian's release names and their aliases: a source serving one of them is the Debian archive
# (a suite like "bookworm-security" or a third party's "nodistro" is not).
DEBIAN_SUITES = frozenset(
    {
        "buster",
        "bullseye",
        "bookworm",
        "trixie",
        "forky",
        "duke",
        "sid",
        "oldoldstable",
        "oldstable",
        "stable",
        "testing",
        "unstable",
    }
)
# URI schemes debootstrap can fetch from
_SCHEMES = ("http://", "https://", "ftp://", "file:/")


@dataclass(frozen=True)
class Source:
    """One ``deb`` entry: where, which suites, which components (and the file it came from)."""

    uri: str
    suites: tuple[str, ...]
    components: tuple[str, ...]
    origin: str = ""


def _strip_comment(line: str) -> str:
    return line.split("#", 1)[0].strip()


_OPTIONS = re.compile(r"^\[[^\]]*\]\s*")


def parse_one_line(text: str, origin: str = "") -> list[Source]:
    """``deb [options] URI SUITE [COMPONENT...]`` lines (``deb-src`` and comments skipped)."""
    out = []
    for raw in text.splitlines():
        line = _strip_comment(raw)
        if not line.startswith("deb ") and not line.startswith("deb\t"):
            continue
        rest = _OPTIONS.sub("", line[3:].strip())
        words = rest.split()
        if len(words) < 2:
            continue
        out.append(Source(words[0], (words[1],), tuple(words[2:]), origin))
    return out


def parse_deb822(text: str, origin: str = "") -> list[Source]:
    """deb822 stanzas (``Types``, ``URIs``, ``Suites``, ``Components``, ``Enabled``), one
    source per URI of a stanza whose types include ``deb`` and that is not disabled."""
    out = []
    stanzas: list[dict[str, str]] = [{}]
    key = ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#"):
            continue
        if not raw.strip():
            if stanzas[-1]:
                stanzas.append({})
            key = ""
            continue
        if raw[0] in " \t" and key:  # a continuation line
            stanzas[-1][key] += " " + raw.strip()
            continue
        name, sep, value = raw.partition(":")
        if not sep:
            continue
        key = name.strip().lower()
        stanzas[-1][key] = value.strip()
    for st in stanzas:
        if "deb" not in st.get("types", "").split():
            continue
        if st.get("enabled", "yes").strip().lower() in ("no", "false", "0"):
            continue
        suites = tuple(st.get("suites", "").split())
        components = tuple(st.get("components", "").split())
        out += [Source(uri, suites, components, origin) for uri in st.get("uris", "").split()]
    return out


def read_sources(apt_dir: Path = APT_DIR) -> list[Source]:
    """Every ``deb`` source apt on this machine is configured with, in apt's file order."""
    out: list[Source] = []
    main = apt_dir / "sources.list"
    if main.is_file():
        out += parse_one_line(main.read_text(errors="replace"), str(main))
    d = apt_dir / "sources.list.d"
    if d.is_dir():
        for f in sorted(d.iterdir()):
            if not f.is_file():
                continue
            if f.suffix == ".list":
                out += parse_one_line(f.read_text(errors="replace"), str(f))
            elif f.suffix == ".sources":
                out += parse_deb822(f.read_text(errors="replace"), str(f))
    return out


def choose_mirror(sources: list[Source], suite: str) -> str | None:
    """The Debian archive among ``sources``: one serving ``suite``'s ``main``, else one serving
    ``main`` of any Debian release (the same archive has every release); None if none does.
    """

    def usable(s: Source) -> bool:
        return s.uri.startswith(_SCHEMES) and "main" in s.components

    for s in sources:
        if usable(s) and suite in s.suites:
            return s.uri.rstrip("/")
    for s in sources:
        if usable(s) and DEBIAN_SUITES.intersection(s.suites):
            return s.uri.rstrip("/")
    return None


def debian_mirror(suite: str, apt_dir: Path = APT_DIR) -> str:
    """The mirror debootstrap fetches ``suite`` from: the one apt on this machine uses."""
    found = choose_mirror(read_sources(apt_dir), suite)
    if found is None:
        raise MissingTool(
            f"no Debian mirror configured for apt: debootstrap needs one serving {suite} main; "
            f"none of {apt_dir}/sources.list or {apt_dir}/sources.list.d/*.list|*.sources names "
            "a Debian release with the main component (add your mirror there, as for apt-get)",
            tool="apt sources",
        )
    return found
