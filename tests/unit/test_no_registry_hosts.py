"""No package registry's host name is spelled anywhere in the repository.

A user's machine has its own apt mirror, Go module proxy and package index settings; the
harness reads apt's sources and lets ``go env GOPROXY`` decide, and fixtures use neutral
example hosts. Module paths (``golang.org/x/net``, ``k8s.io/api``) are names, not hosts, and
stay. The names below are built from pieces, so this file does not contain them itself.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]

_DOT = r"\."
# host names of package registries and their mirrors/proxies: (pattern, what it is)
FORBIDDEN = [
    (r"[a-z0-9-]+" + _DOT + "golang" + _DOT + "org", "the Go module proxy or checksum database"),
    ("goproxy" + _DOT + "(io|cn)", "a Go module proxy"),
    ("debian" + _DOT + "org", "a Debian mirror"),
    ("ubuntu" + _DOT + "com", "an Ubuntu mirror"),
    ("py" + "pi" + _DOT + "(org|python" + _DOT + "org)", "the Python index"),
    ("python" + "hosted" + _DOT + "org", "the Python index's files"),
    ("npm" + "js" + _DOT + "(org|com)", "the npm registry"),
    ("yarn" + "pkg" + _DOT + "com", "the yarn registry"),
    ("crates" + _DOT + "io", "the crates registry"),
    (r"repo1?" + _DOT + "maven" + r"(\.apache)?" + _DOT + "org", "Maven Central"),
    ("ruby" + "gems" + _DOT + "org", "the RubyGems registry"),
]
# any subdomain of those too; a module path starting with golang.org (golang.org/x/...) is a
# name, not a host, and the golang pattern needs a subdomain (proxy., sum.)
_HOSTS = re.compile(
    r"(?<![A-Za-z0-9.-])([a-z0-9-]+\.)*("
    + "|".join(p for p, _ in FORBIDDEN)
    + r")(?![A-Za-z0-9-])",
    re.IGNORECASE,
)


def tracked_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    return [REPO / f for f in out.split("\0") if f]


def hits(text: str) -> list[str]:
    return [m.group(0) for m in _HOSTS.finditer(text)]


def test_the_pattern_finds_what_it_is_meant_to_find() -> None:
    # the test's own teeth: each forbidden kind, assembled here, is found; module paths are not
    for sample in (
        "https://proxy.go" + "lang.org/k8s.io/dns/@v/list",
        "http://deb.deb" + "ian.org/debian",
        "https://files.python" + "hosted.org/x",
        "https://py" + "pi.org/simple",
        "https://registry.npm" + "js.org/",
        "https://index.cra" + "tes.io/",
        "https://repo1.mav" + "en.org/maven2",
        "GOPROXY=https://go" + "proxy.cn",
    ):
        assert hits(sample), sample
    assert hits("golang.org/x/net v0.30.0 and k8s.io/api v0.35.4 and sigs.k8s.io/kind") == []


def test_no_tracked_file_names_a_package_registry_host() -> None:
    found = []
    for path in tracked_files():
        if not path.is_file():
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue  # binary
        for n, line in enumerate(text.splitlines(), 1):
            for h in hits(line):
                found.append(f"{path.relative_to(REPO)}:{n}: {h}")
    assert found == [], "registry hosts spelled in the repository:\n" + "\n".join(found)
