"""One engine worker process: reads ``{"pods", "plan", "start_at", "stride"}`` as JSON on
stdin, runs its share of the load, and writes its records on stdout as one ``marshal``-ed
list of rows (:func:`loadgen.dns.codec.record_to_row`; the parent is the same interpreter)."""

from __future__ import annotations

import gc
import json
import marshal
import sys

from loadgen.dns.codec import plan_from_json, pod_from_json, record_to_row
from loadgen.dns.engine import _run_fast


def main() -> None:
    # A short-lived process: no cyclic collection at all (the load loop turns it off anyway;
    # writing the rows afterwards would otherwise walk every record again and again).
    gc.disable()
    job = json.load(sys.stdin)
    pods = [pod_from_json(p) for p in job["pods"]]
    plan = plan_from_json(job["plan"])
    stride = (int(job["stride"][0]), int(job["stride"][1]))
    records = _run_fast(pods, plan, None, start_at=job["start_at"], stride=stride)
    sys.stdout.buffer.write(marshal.dumps([record_to_row(r) for r in records]))
    sys.stdout.buffer.flush()


if __name__ == "__main__":
    main()
