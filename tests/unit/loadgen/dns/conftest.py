from __future__ import annotations

import pytest

from harness.dns.resolvconf import ResolvConf
from loadgen.dns.fake import Zone

SEARCH = ("default.svc.cluster.local", "svc.cluster.local", "cluster.local")


def pod_conf(*options: str, nameservers: tuple[str, ...] = ("10.96.0.10",)) -> ResolvConf:
    text = "\n".join(f"nameserver {ns}" for ns in nameservers)
    text += "\nsearch " + " ".join(SEARCH) + "\noptions ndots:5 " + " ".join(options) + "\n"
    return ResolvConf.parse(text)


@pytest.fixture
def zone() -> Zone:
    return Zone(names={"my-service.default.svc.cluster.local"})
