"""HTTP/1.1 on the wire: the request bytes and an incremental response reader.

Pure: no sockets. Shared by the asyncio raw client and the Locust raw-socket users, so
both speak exactly the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_HEADER_BYTES = 16 * 1024


class ProtocolError(Exception):
    """The server's response is not valid HTTP/1.1."""


def build_request(host: str, path: str = "/", *, close: bool) -> bytes:
    """A GET request. ``close`` adds ``Connection: close`` (the server then closes first)."""
    if not path.startswith("/"):
        raise ValueError(f"path must start with '/': {path!r}")
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "User-Agent: conntrack-harness"]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


@dataclass
class ResponseReader:
    """Feed received bytes; ``complete`` turns true once one whole response has arrived.

    A body is delimited by ``Content-Length``; without it the body runs to EOF (call
    :meth:`eof`). Chunked bodies are not supported (the harness's servers never send them).
    """

    status: int | None = None
    keep_alive: bool = True
    complete: bool = False
    received: int = 0
    _buf: bytes = b""
    _body_left: int | None = None  # None: unknown until headers; -1: read to EOF

    def feed(self, data: bytes) -> bool:
        self.received += len(data)
        if self.complete:
            return True
        if self.status is None:
            self._buf += data
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEADER_BYTES:
                    raise ProtocolError("response headers too long")
                return False
            self._parse_head(self._buf[:end])
            data = self._buf[end + 4 :]
            self._buf = b""
        if self._body_left is not None and self._body_left >= 0:
            self._body_left -= len(data)
            if self._body_left <= 0:
                self.complete = True
        return self.complete

    def eof(self) -> bool:
        """The peer closed. Returns whether that completed a valid response."""
        if self.status is not None and self._body_left == -1:
            self.complete = True
        return self.complete

    def _parse_head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ProtocolError(f"bad status line: {lines[0][:80]!r}")
        self.status = int(parts[1])
        self.keep_alive = parts[0] == "HTTP/1.1"
        length: int | None = None
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise ProtocolError(f"bad header line: {line[:80]!r}")
            key = name.strip().lower()
            val = value.strip()
            if key == "content-length":
                if not val.isdigit():
                    raise ProtocolError(f"bad Content-Length: {val!r}")
                length = int(val)
            elif key == "connection":
                self.keep_alive = val.lower() != "close"
            elif key == "transfer-encoding" and val.lower() != "identity":
                raise ProtocolError(f"unsupported Transfer-Encoding: {val!r}")
        if length is None:
            self._body_left = -1
            self.keep_alive = False
        else:
            self._body_left = length
            if length == 0:
                self.complete = True
