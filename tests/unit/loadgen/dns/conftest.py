from __future__ import annotations

import pytest

from loadgen.dns.fake import Zone


@pytest.fixture
def zone() -> Zone:
    return Zone(names={"my-service.default.svc.cluster.local"})
