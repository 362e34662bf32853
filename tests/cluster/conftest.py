"""Cluster tests (kind, the private dockerd, a real cluster): root, docker, the host lock.

They check the host the same way the kernel tests do, with the same fixtures."""

from __future__ import annotations

from tests.kernel.conftest import HostSnapshot, host_unchanged, journal

__all__ = ["HostSnapshot", "host_unchanged", "journal"]
