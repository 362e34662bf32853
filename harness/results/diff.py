"""Two runs of one scenario side by side (pure): the upgrade check.

Run A and run B (e.g. the same scenario on Kubernetes v1.35.4 and v1.37.2) are matched phase by
phase, by name and repeat index. For each phase: did the verdict change, the two timeout rates
with their 95 % intervals and whether the intervals overlap, and the conntrack drops.
Then what differs in the environment: kernel, backend, and every upstream component's version.

The intervals are batch means over one-second batches of the phase's DNS timeline
(:func:`harness.steady.assess.batch_means_ci`; the Wilson interval of result.json where a phase
has no timeline). Lookups in the same second share the table's state and time out together,
so Wilson's interval, which takes them as independent, is too narrow to compare two runs.
Even the batch interval shows only the spread within one run, and runs differ by more (the
race's rate varies with each run's scheduling): :data:`RUN_SPREAD_NOTE` says so under the
table. A rate is context; the upgrade check's finding is a changed verdict.

A phase that only one run has counts as a changed verdict (the other run never judged it).
A phase ``inconclusive`` in either run (not measured in its load's steady state) is neither
changed nor unchanged: the upgrade check cannot say, and ``compare`` exits 6 when nothing
else changed.
"""

from __future__ import annotations

import json
import math
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cthcommon.errors import BadInput
from harness.results.schema import PhaseResult, RunResult
from harness.steady.assess import batch_means_ci
from harness.wording import phases_text

MISSING = "absent"  # the verdict of a phase the run does not have
INCONCLUSIVE = "inconclusive"
BATCHES, WILSON = "1 s batches", "Wilson"
# race.yaml five times on netns (one machine, one commit): its noisiest phase's timeout rate
# (ndots-2: 47.3, 48.3, 52.4, 50.5, 49.4 %) has this standard deviation from run to run
RUN_TO_RUN_SD = 0.020
# how far apart two runs of one configuration land 95 % of the time
RUN_TO_RUN_95 = 1.96 * math.sqrt(2) * RUN_TO_RUN_SD
RUN_SPREAD_NOTE = (
    "The intervals are each run's own spread (batch means over one-second batches). Two runs "
    "of one configuration differ by more: race.yaml's ndots-2 phase, five runs on netns, "
    f"47.3-52.4 % (sd {RUN_TO_RUN_SD * 100:.1f} points). Intervals that do not overlap are not by "
    "themselves a change; a changed verdict is. Give a phase `repeat:` to see its run-to-run "
    "spread."
)


@dataclass(frozen=True)
class Side:
    """One run's view of one phase (None everywhere when the run lacks the phase)."""

    verdict: str
    lookups: int | None = None
    timeout_rate: float | None = None
    ci: tuple[float, float] | None = None
    ci_method: str | None = None  # BATCHES or WILSON
    drop: int | None = None
    # phases with endpoint events: the zero-endpoint windows' stale entries and where the
    # same-port client's queries went (harness.results.endpoints)
    endpoints: dict[str, float] | None = None
    # the statsd sender: delivery counted at the receivers, and where the zero-endpoint
    # windows' datagrams went (harness.results.statsd)
    statsd: dict[str, float] | None = None


@dataclass(frozen=True)
class PhaseDiff:
    name: str
    repeat_index: int
    a: Side
    b: Side

    @property
    def inconclusive(self) -> bool:
        """A side did not measure the phase in steady state (and both have it)."""
        sides = (self.a.verdict, self.b.verdict)
        return INCONCLUSIVE in sides and MISSING not in sides

    @property
    def verdict_changed(self) -> bool:
        return self.a.verdict != self.b.verdict and not self.inconclusive

    @property
    def ci_overlap(self) -> bool | None:
        """Whether the two timeout-rate intervals overlap (None when a side lacks one)."""
        if self.a.ci is None or self.b.ci is None:
            return None
        return self.a.ci[0] <= self.b.ci[1] and self.b.ci[0] <= self.a.ci[1]


@dataclass(frozen=True)
class Change:
    """One environment item in both runs (None: that run did not record it)."""

    a: str | None
    b: str | None

    @property
    def changed(self) -> bool:
        return self.a != self.b


@dataclass(frozen=True)
class RunDiff:
    scenario: str
    a_run: str
    b_run: str
    phases: list[PhaseDiff]
    environment: dict[str, Change]  # kernel, backend
    components: dict[str, Change]  # upstream component -> version

    @property
    def verdict_changed(self) -> bool:
        return any(p.verdict_changed for p in self.phases)

    def changed_phases(self) -> list[PhaseDiff]:
        return [p for p in self.phases if p.verdict_changed]

    def inconclusive_phases(self) -> list[PhaseDiff]:
        return [p for p in self.phases if p.inconclusive]

    def to_json(self) -> dict[str, Any]:
        def env(d: dict[str, Change]) -> dict[str, Any]:
            return {k: {"a": c.a, "b": c.b, "changed": c.changed} for k, c in d.items()}

        return {
            "scenario": self.scenario,
            "a": self.a_run,
            "b": self.b_run,
            "verdict_changed": self.verdict_changed,
            "inconclusive": bool(self.inconclusive_phases()),
            "phases": [
                {
                    "name": p.name,
                    "repeat_index": p.repeat_index,
                    "a": _side_json(p.a),
                    "b": _side_json(p.b),
                    "verdict_changed": p.verdict_changed,
                    "inconclusive": p.inconclusive,
                    "ci_overlap": p.ci_overlap,
                }
                for p in self.phases
            ],
            "environment": {**env(self.environment), "components": env(self.components)},
        }


def _side_json(s: Side) -> dict[str, Any]:
    d = asdict(s)
    d["ci"] = list(s.ci) if s.ci is not None else None
    return d


def read_result(path: Path, field: str) -> RunResult:
    """A result.json, or BadInput naming ``field`` (the argument it came from)."""
    if not path.is_file():
        raise BadInput("result file not found", field=field, value=str(path))
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInput(f"not JSON: {e}", field=field, value=str(path)) from None
    if not isinstance(data, dict):
        raise BadInput("not a conntrack-harness result.json", field=field, value=str(path))
    for key, kind in (("scenario", str), ("phases", list), ("environment", dict)):
        if not isinstance(data.get(key), kind):
            raise BadInput(
                f"not a conntrack-harness result.json (no {key!r})", field=field, value=str(path)
            )
    for p in data["phases"]:
        if not isinstance(p, dict) or "name" not in p or "verdict" not in p:
            raise BadInput(
                "not a conntrack-harness result.json (a phase without name or verdict)",
                field=field,
                value=str(path),
            )
    return data  # type: ignore[return-value]


def _side(p: PhaseResult | None) -> Side:
    if p is None:
        return Side(MISSING)
    raw: dict[str, Any] = dict(p)  # an error run's phase may lack dns or conntrack
    dns: dict[str, Any] = raw.get("dns") or {}
    ci, method = rate_interval(dns)
    drop = (raw.get("conntrack") or {}).get("drop")
    ep = raw.get("endpoints")
    endpoints = (
        {k: ep[k] for k in ENDPOINT_FIELDS if isinstance(ep.get(k), int | float)}
        if isinstance(ep, dict)
        else None
    )
    if endpoints is not None and isinstance(ep, dict) and ep.get(NEVER_KEY, 0) is None:
        endpoints[NEVER_KEY] = NEVER  # a client never answered again: kept, as -1
    st = raw.get("statsd")
    statsd = (
        {k: st[k] for k in STATSD_FIELDS if isinstance(st.get(k), int | float)}
        if isinstance(st, dict)
        else None
    )
    return Side(
        verdict=str(p["verdict"]),
        lookups=dns.get("lookups"),
        timeout_rate=dns.get("timeout_rate"),
        ci=ci,
        ci_method=method,
        drop=drop,
        endpoints=endpoints,
        statsd=statsd,
    )


def rate_interval(dns: dict[str, Any]) -> tuple[tuple[float, float] | None, str | None]:
    """The phase's 95 % interval: batch means over its timeline's one-second batches, or the
    Wilson interval result.json gives where there are fewer than two batches."""
    timeline = dns.get("timeline")
    if isinstance(timeline, list) and timeline:
        _, low, high, batches = batch_means_ci(timeline, batch_s=1)
        if batches >= 2:
            return (low, high), BATCHES
    ci = dns.get("timeout_rate_ci")
    if ci:
        return (float(ci["low"]), float(ci["high"])), WILSON
    return None, None


ENDPOINT_FIELDS = (
    "stale_entries_max",
    "client_flows_stale_max",
    "sent",
    "answered",
    "refused",
    "blackholed",
    "rejected_silently",
    "answered_again_s_max",
)


NEVER_KEY, NEVER = "answered_again_s_max", -1.0

STATSD_FIELDS = (
    "sent",
    "delivered",
    "lost",
    "window_sent",
    "window_delivered",
    "blackholed",
    "rejected",
)


def _statsd(s: Side) -> str:
    e = s.statsd
    if e is None:
        return "-"
    g = {k: int(e.get(k, 0)) for k in STATSD_FIELDS}
    return (
        f"{g['sent']} sent, {g['delivered']} delivered (at the receivers), {g['lost']} lost; "
        f"with no endpoint {g['window_sent']} sent: {g['blackholed']} to a deleted pod, "
        f"{g['rejected']} rejected at the node, {g['window_delivered']} delivered"
    )


def _endpoints(s: Side) -> str:
    e = s.endpoints
    if e is None:
        return "-"
    g = {k: int(e.get(k, 0)) for k in ENDPOINT_FIELDS}
    again = e.get(NEVER_KEY)
    back = (
        ""  # a result from before the field existed
        if again is None
        else "; a same-port client was not answered again before the load ended"
        if again == NEVER
        else f"; every same-port client answered again within {again:.1f} s of the next event"
    )
    return (
        f"{g['stale_entries_max']} stale entries ({g['client_flows_stale_max']} the clients'); "
        f"of {g['sent']} same-port queries {g['answered']} answered, {g['refused']} refused, "
        f"{g['blackholed']} to a deleted pod, {g['rejected_silently']} rejected at the node "
        f"without an ICMP error{back}"
    )


def _key(p: PhaseResult) -> tuple[str, int]:
    return (p["name"], int(p.get("repeat_index", 0)))


def _component_versions(result: RunResult) -> dict[str, str]:
    comps = result["environment"].get("components") or {}
    return {name: str(info.get("version")) for name, info in comps.items()}


def _str(v: object) -> str | None:
    return None if v is None else str(v)


def diff_runs(a: RunResult, b: RunResult) -> RunDiff:
    """Match the two runs' phases and environments; BadInput when they are not one scenario."""
    if a["scenario"] != b["scenario"]:
        raise BadInput(
            f"the two results are different scenarios ({a['scenario']!r} and {b['scenario']!r})",
            field="scenario",
        )
    pa = {_key(p): p for p in a["phases"]}
    pb = {_key(p): p for p in b["phases"]}
    order = list(pa) + [k for k in pb if k not in pa]
    phases = [PhaseDiff(k[0], k[1], _side(pa.get(k)), _side(pb.get(k))) for k in order]
    ea, eb = a["environment"], b["environment"]
    environment = {k: Change(_str(ea.get(k)), _str(eb.get(k))) for k in ("kernel", "backend")}
    ca, cb = _component_versions(a), _component_versions(b)
    components = {n: Change(ca.get(n), cb.get(n)) for n in sorted(ca.keys() | cb.keys())}
    return RunDiff(
        a["scenario"], a.get("run_id", "?"), b.get("run_id", "?"), phases, environment, components
    )


def _rate(s: Side) -> str:
    if s.timeout_rate is None:
        return "-"
    ci = f" [{s.ci[0]:.4f}, {s.ci[1]:.4f}]" if s.ci else ""
    return f"{s.timeout_rate:.4f}{ci}"


def render(d: RunDiff) -> str:
    """The comparison as a plain-text table (what `conntrack-harness compare` prints)."""
    rows = [("phase", "verdict A", "verdict B", "timeout rate A [95% CI]",
             "timeout rate B [95% CI]", "CIs overlap", "drop A", "drop B")]  # fmt: skip
    for p in d.phases:
        label = p.name if not p.repeat_index else f"{p.name}#{p.repeat_index}"
        overlap = {None: "-", True: "yes", False: "NO"}[p.ci_overlap]
        mark = "  << CHANGED" if p.verdict_changed else ""
        mark = "  << INCONCLUSIVE" if p.inconclusive else mark
        verdict_b = p.b.verdict + mark
        rows.append(
            (label, p.a.verdict, verdict_b, _rate(p.a), _rate(p.b), overlap,
             "-" if p.a.drop is None else str(p.a.drop),
             "-" if p.b.drop is None else str(p.b.drop))
        )  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"scenario {d.scenario}: A = {d.a_run}, B = {d.b_run}", ""]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines += ["", *textwrap.wrap(RUN_SPREAD_NOTE, 96)]
    if any(WILSON in (p.a.ci_method, p.b.ci_method) for p in d.phases):
        lines.append("(a phase without a DNS timeline: its Wilson interval, narrower still)")
    sections = [
        ("while a Service had no endpoint (phases[].endpoints):", "endpoints", _endpoints),
        ("the statsd sender (phases[].statsd):", "statsd", _statsd),
    ]
    for title, attr, line in sections:
        shown = [
            p for p in d.phases if getattr(p.a, attr) is not None or getattr(p.b, attr) is not None
        ]
        if shown:
            lines += ["", title]
        for p in shown:
            label = p.name if not p.repeat_index else f"{p.name}#{p.repeat_index}"
            lines += [f"  {label} A: {line(p.a)}", f"  {label} B: {line(p.b)}"]
    lines += ["", "environment (A -> B):"]
    items = list(d.environment.items()) + list(d.components.items())
    name_w = max((len(k) for k, _ in items), default=0)
    for k, c in items:
        mark = "changed" if c.changed else "same"
        value = f"{c.a} -> {c.b}" if c.changed else str(c.a)
        lines.append(f"  {k.ljust(name_w)}  {value}  ({mark})")
    changed = d.changed_phases()
    lines.append("")
    unsure = d.inconclusive_phases()
    if changed:
        names = ", ".join(p.name for p in changed)
        lines.append(f"VERDICT CHANGED in {len(changed)} phase(s): {names}")
    if unsure:
        names = ", ".join(p.name for p in unsure)
        lines.append(
            f"INCONCLUSIVE in {len(unsure)} phase(s): {names} (not measured in steady state "
            "in one run: steady_state.reason in its result.json says why)"
        )
    if not changed and not unsure:
        lines.append(f"no verdict changed ({phases_text(len(d.phases))})")
    return "\n".join(lines)
