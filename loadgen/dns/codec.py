"""JSON forms of the public DNS load types, for worker processes and ``loadgen/worker.py``."""

from __future__ import annotations

import dataclasses
from typing import Any

from harness.dns.resolvconf import ResolvConf
from loadgen.dns.types import AttemptRecord, ClientPod, DNSPlan, LookupRecord

_RECORD_FIELDS = tuple(f.name for f in dataclasses.fields(LookupRecord))
_ATTEMPT_FIELDS = tuple(f.name for f in dataclasses.fields(AttemptRecord))


def pod_to_json(pod: ClientPod) -> dict[str, Any]:
    return {"netns": pod.netns, "ip": pod.ip, "resolv_conf": pod.resolv.render()}


def pod_from_json(d: dict[str, Any]) -> ClientPod:
    return ClientPod(netns=d["netns"], ip=d["ip"], resolv=ResolvConf.parse(d["resolv_conf"]))


def plan_to_json(plan: DNSPlan) -> dict[str, Any]:
    return dataclasses.asdict(plan)


def plan_from_json(d: dict[str, Any]) -> DNSPlan:
    return DNSPlan(**d)


def record_to_json(rec: LookupRecord) -> dict[str, Any]:
    # Field by field: dataclasses.asdict deep-copies and is ~10x slower on 100k records.
    d = {f: getattr(rec, f) for f in _RECORD_FIELDS}
    d["attempts"] = [{f: getattr(a, f) for f in _ATTEMPT_FIELDS} for a in rec.attempts]
    return d


def record_from_json(d: dict[str, Any]) -> LookupRecord:
    attempts = [AttemptRecord(**a) for a in d.get("attempts", [])]
    return LookupRecord(**{**d, "attempts": attempts})
