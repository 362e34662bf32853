"""JSON forms of the public DNS load types, for worker processes and ``loadgen/worker.py``."""

from __future__ import annotations

import dataclasses
from typing import Any

from cthcommon.resolvconf import ResolvConf
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


# Rows: a record as a tuple of its fields in declaration order, its attempts as tuples too.
# What engine workers send their parent (marshal, same interpreter on both ends): no field
# names repeated per record, and no per-field Python calls to write or read them.
RecordRow = tuple[Any, ...]
_ATTEMPTS_AT = _RECORD_FIELDS.index("attempts")


def record_to_row(rec: LookupRecord) -> RecordRow:
    return (
        rec.t_start,
        rec.pod,
        rec.name,
        rec.outcome,
        rec.latency_s,
        rec.queries_sent,
        rec.replies_received,
        rec.source_ports,
        rec.retries,
        rec.full_timeout_waits,
        [
            (a.qname, a.qtype, a.server, a.proto, a.port, a.t_sent, a.latency_s, a.rcode)
            for a in rec.attempts
        ],
        rec.resolver,
        rec.error,
    )


def record_from_row(row: RecordRow) -> LookupRecord:
    rec = LookupRecord(*row)
    rec.attempts = [AttemptRecord(*a) for a in row[_ATTEMPTS_AT]]
    return rec
