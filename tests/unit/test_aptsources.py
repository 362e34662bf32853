"""The Debian mirror debootstrap uses is the one apt on this machine is configured with, read
from both of apt's source formats (pure: the files are written into a temporary apt dir)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cthcommon.errors import MissingTool
from harness.aptsources import choose_mirror, debian_mirror, parse_deb822, parse_one_line

pytestmark = pytest.mark.unit

DEB822 = """Types: deb deb-src
# a comment inside the stanza
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: https://vendor.example/node_20.x
Suites: nodistro
Components: main
"""


def apt_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    d = tmp_path / "apt"
    (d / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return d


def test_deb822_stanzas_give_one_source_per_uri() -> None:
    got = parse_deb822(DEB822)
    assert [s.uri for s in got] == [
        "http://mirror.example/debian",
        "http://mirror.example/debian-security",
        "https://vendor.example/node_20.x",
    ]
    assert got[0].suites == ("bookworm", "bookworm-updates")
    assert got[0].components == ("main", "contrib")


def test_deb822_disabled_and_source_only_stanzas_are_skipped() -> None:
    text = (
        "Types: deb\nURIs: http://a.example/debian\nSuites: bookworm\nComponents: main\n"
        "Enabled: no\n\nTypes: deb-src\nURIs: http://b.example/debian\nSuites: bookworm\n"
        "Components: main\n"
    )
    assert parse_deb822(text) == []


def test_one_line_format_with_options_and_comments() -> None:
    text = (
        "# deb http://commented.example/debian bookworm main\n"
        "deb-src http://src.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main # c\n"
    )
    (s,) = parse_one_line(text)
    assert (s.uri, s.suites, s.components) == (
        "http://mirror.example/debian",
        ("bookworm",),
        ("main",),
    )


def test_the_suite_asked_for_wins_and_security_and_vendors_never_do() -> None:
    sources = parse_deb822(DEB822)
    assert choose_mirror(sources, "bookworm") == "http://mirror.example/debian"
    # another release on the same archive still names the archive
    assert choose_mirror(sources, "trixie") == "http://mirror.example/debian"
    assert choose_mirror(sources[1:], "bookworm") is None  # security and a vendor: not it


def test_mirror_read_from_sources_list_d(tmp_path: Path) -> None:
    d = apt_dir(tmp_path, {"sources.list.d/debian.sources": DEB822})
    # files apt ignores (another suffix) are ignored here too
    (d / "sources.list.d" / "x.list.disabled").write_text(
        "deb http://no.example/debian bookworm main\n"
    )
    assert debian_mirror("bookworm", d) == "http://mirror.example/debian"


def test_mirror_read_from_sources_list(tmp_path: Path) -> None:
    d = apt_dir(tmp_path, {"sources.list": "deb http://mirror.example/debian/ trixie main\n"})
    assert debian_mirror("bookworm", d) == "http://mirror.example/debian"


def test_no_mirror_is_a_missing_prerequisite_naming_where_it_looked(tmp_path: Path) -> None:
    d = apt_dir(tmp_path, {"sources.list.d/vendor.list": "deb https://v.example/x nodistro main\n"})
    with pytest.raises(MissingTool) as e:
        debian_mirror("bookworm", d)
    assert e.value.exit_code == 2
    assert "sources.list" in str(e.value)
    assert "bookworm main" in str(e.value)
