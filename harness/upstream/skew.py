"""Kubernetes' version skew policy for kube-proxy against its kube-apiserver (pure).

https://kubernetes.io/releases/version-skew-policy/#kube-proxy: kube-proxy must not be newer
than kube-apiserver, and may be up to three minor versions older (since v1.28; two before).
"""

from __future__ import annotations

import re

OLDER_MINORS = 3


def minor(version: str) -> tuple[int, int]:
    m = re.match(r"^v?(\d+)\.(\d+)", version)
    if not m:
        raise ValueError(f"not a Kubernetes version: {version!r}")
    return int(m.group(1)), int(m.group(2))


def within_skew(kube_proxy: str, apiserver: str) -> bool:
    (pm, pn), (am, an) = minor(kube_proxy), minor(apiserver)
    return pm == am and 0 <= an - pn <= OLDER_MINORS


def skew_note(kube_proxy: str, apiserver: str) -> str:
    """What result.json says of a kube-proxy run beside another release's kube-apiserver."""
    if within_skew(kube_proxy, apiserver):
        return (
            f"within Kubernetes' supported version skew (kube-proxy {kube_proxy} with "
            f"kube-apiserver {apiserver}: not newer, at most {OLDER_MINORS} minors older)"
        )
    return (
        f"OUTSIDE Kubernetes' supported version skew: kube-proxy {kube_proxy} with "
        f"kube-apiserver {apiserver} (kube-proxy must not be newer than kube-apiserver, nor "
        f"more than {OLDER_MINORS} minors older)"
    )
