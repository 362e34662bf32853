"""When each lookup starts: the load shape as a pure sequence of offsets (seconds from t0).

- ``constant``: ``rate`` lookups/s, evenly spaced.
- ``burst``: ``rate`` lookups/s for ``burst_on_s``, then nothing for ``burst_off_s``, repeated.
- ``ramp``: the rate rises linearly from 0 to ``rate`` over the whole duration
  (lookup *i* starts at ``sqrt(2 * duration * i / rate)``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from loadgen.dns.types import DNSPlan


def start_offsets(plan: DNSPlan) -> Iterator[float]:
    rate, dur = plan.rate, plan.duration_s
    i = 0
    if plan.pattern == "constant":
        while (t := i / rate) < dur:
            yield t
            i += 1
    elif plan.pattern == "burst":
        period = plan.burst_on_s + plan.burst_off_s
        start = 0.0
        while start < dur:
            j = 0
            while (dt := j / rate) < plan.burst_on_s and start + dt < dur:
                yield start + dt
                j += 1
            start += period
    else:  # ramp
        while (t := math.sqrt(2.0 * dur * i / rate)) < dur:
            yield t
            i += 1


def expected_count(plan: DNSPlan) -> int:
    return sum(1 for _ in start_offsets(plan))
