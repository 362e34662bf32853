"""What can go wrong getting an upstream component into the cache."""

from __future__ import annotations

import re

from cthcommon.errors import BackendError

# "reading https://PROXY/k8s.io/dns/@v/1.26.4.info: 403 Forbidden", where PROXY is whichever
# Go module proxy `go env GOPROXY` names on this machine
_PROXY_REFUSAL = re.compile(
    r"reading (?P<proxy>https?://[^\s]+?)/(?P<module>[^\s@]+)/@v/(?P<version>[^\s/]+?)"
    r"\.(?:info|mod|zip|list): (?P<status>\d{3})"
)
_LIST_REFUSAL = re.compile(
    r"reading (?P<proxy>https?://[^\s]+?)/(?P<module>[^\s@]+)/@v/list: (?P<status>\d{3})"
)


class BuildFailed(BackendError):
    """Building an upstream component failed."""


class ModuleRefused(BuildFailed):
    """The Go module proxy refused a module version the component needs."""

    def __init__(self, component: str, module: str, version: str, status: str, detail: str):
        super().__init__(
            f"{component}: the Go module proxy refused {module}@{version} ({status}): {detail}",
            module=module,
            version=version,
            status=status,
        )
        self.component = component
        self.module = module
        self.version = version
        self.status = status


class DownloadUnavailable(BackendError):
    """The official release could not be fetched (no network, no such file): try the Go build."""


class DownloadUnreachable(DownloadUnavailable):
    """The download host did not answer at all (no name, no route, a timeout), as opposed to
    an answer without the file: the rest of the build need not ask it again."""


class ChecksumMismatch(BackendError):
    """A downloaded file's sha256 is not the published one: nothing was installed."""


def _decode_module(escaped: str) -> str:
    """Module paths in proxy URLs write upper-case letters as '!' + lower case."""
    return re.sub(r"!([a-z])", lambda m: m.group(1).upper(), escaped)


def refusal(component: str, stderr: str) -> ModuleRefused | None:
    """The first module version the proxy refused, named in ``go``'s error output."""
    m = _PROXY_REFUSAL.search(stderr)
    if m:
        module, version = _decode_module(m["module"]), _decode_module(m["version"])
    else:
        m = _LIST_REFUSAL.search(stderr)
        if not m:
            return None
        module, version = _decode_module(m["module"]), "(version list)"
    if m["status"] not in ("403", "404", "410"):
        return None
    line = next((ln.strip() for ln in stderr.splitlines() if m[0] in ln), m[0])
    return ModuleRefused(component, module, version, m["status"], line)
