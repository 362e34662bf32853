"""Name the cause of DNS timeouts from measured signals (pure).

Follows seed 002's checklist (insert_failed, table fill, "table full" lines, resolv.conf) and
decision table, and DESIGN.md's three-place accounting (client, node, server). Rules are tried
in order; the first whose signature is present wins, and every rule that looked at a signal
leaves a line of evidence so the reader can check the reasoning.

==============  ===========================================================================
cause           signature
==============  ===========================================================================
exhaustion      count near max (>= 90 %) and drop/early_drop or "table full" lines
insert-race     insert_failed with drop (natural), or same-port pairs with one packet lost at
                the node (an INJECTED race window: labelled as injected)
server-overload the DNS servers received more queries than they answered
injected-fault  an injected fault hit packets but the loss has no natural signature
none            none of the above
==============  ===========================================================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from harness.results.schema import PhaseResult

Cause = Literal["exhaustion", "insert-race", "server-overload", "injected-fault", "none"]
Confidence = Literal["high", "medium", "low"]

NEAR_FULL = 0.9

REMEDIATION: dict[Cause, str] = {
    "exhaustion": (
        "Pool HTTP connections (keep-alive, e.g. requests.Session) so fewer flows are created; "
        "raise nf_conntrack_max with nf_conntrack_buckets = max/4 and shorten "
        "nf_conntrack_tcp_timeout_time_wait (e.g. 30 s); NodeLocal DNSCache keeps cached names "
        "resolving (seed 002: 'conntrack table full errors in dmesg -> nf_conntrack_max tuning')."
    ),
    "insert-race": (
        "Start with 'single-request-reopen' in the pod dnsConfig; plan NodeLocal DNSCache, "
        "which takes UDP/53 out of SNAT/conntrack (seed 002: 'insert_failed climbing')."
    ),
    "server-overload": (
        "Scale CoreDNS (replicas or cluster-proportional-autoscaler), enable 'cache 30', raise "
        "forward max_concurrent; NodeLocal DNSCache takes load off CoreDNS."
    ),
    "injected-fault": (
        "Nothing to change in production: the harness injected this fault. Use the phase to "
        "test remediations, not to judge the host."
    ),
    "none": "No change needed on this evidence.",
}


@dataclass(frozen=True)
class Signals:
    """What was measured. ``None`` means "not measured", which is not the same as 0."""

    conntrack_max: int | None = None
    peak_count: int | None = None
    drop: int = 0
    early_drop: int = 0
    insert_failed: int = 0
    clash_resolve: int = 0
    table_full_lines: int = 0
    lookups: int | None = None
    timeouts: int | None = None
    waited: int | None = None  # lookups that waited for a resend (timeouts included)
    server_received: int | None = None
    server_answered: int | None = None
    server_errors: int | None = None  # lookups the servers answered with SERVFAIL/REFUSED
    node_dropped: int | None = None  # DNS packets that entered a node and never left it
    same_port_unanswered: int | None = None  # same-tuple pairs with one query unanswered
    injected: bool = False
    fault_kind: str | None = None
    fault_hits: int | None = None
    resolver_flags: frozenset[str] = field(default_factory=frozenset)
    ndots: int | None = None
    time_wait_s: int | None = None  # nf_conntrack_tcp_timeout_time_wait in force


@dataclass(frozen=True)
class Diagnosis:
    cause: Cause
    confidence: Confidence
    evidence: list[str]
    remediation: str
    injected: bool = False  # the cause was produced by a harness-injected fault

    @property
    def label(self) -> str:
        return f"{self.cause} (injected)" if self.injected else self.cause


# A TIME_WAIT at or below this is already short: shortening it further is not the lever.
SHORT_TIME_WAIT_S = 30


def exhaustion_remediation(s: Signals) -> str:
    """The exhaustion advice, minus what is already done (a TIME_WAIT already short)."""
    if s.time_wait_s is None or s.time_wait_s > SHORT_TIME_WAIT_S:
        return REMEDIATION["exhaustion"]
    return (
        "Pool HTTP connections (keep-alive, e.g. requests.Session) so fewer flows are created; "
        "raise nf_conntrack_max with nf_conntrack_buckets = max/4 "
        f"(nf_conntrack_tcp_timeout_time_wait is already {s.time_wait_s} s: shortening it "
        "further is not the lever); NodeLocal DNSCache keeps cached names resolving (seed 002: "
        "'conntrack table full errors in dmesg -> nf_conntrack_max tuning')."
    )


def _fill(s: Signals) -> float | None:
    if s.conntrack_max and s.peak_count is not None:
        return s.peak_count / s.conntrack_max
    return None


def _server_gap(s: Signals) -> int:
    if s.server_received is None or s.server_answered is None:
        return 0
    return max(0, s.server_received - s.server_answered)


def _resolver_notes(s: Signals) -> list[str]:
    notes = []
    if "single-request-reopen" in s.resolver_flags:
        notes.append("resolv.conf has single-request-reopen: A/AAAA use separate sockets")
    elif "single-request" in s.resolver_flags:
        notes.append("resolv.conf has single-request: A/AAAA are sequential on one socket")
    elif s.resolver_flags or s.ndots is not None:
        notes.append("resolv.conf sends A/AAAA in parallel from one socket (exposed to the race)")
    if s.ndots is not None and s.ndots >= 5:
        notes.append(f"ndots:{s.ndots}: short names walk the search list (more query pairs)")
    return notes


def classify(s: Signals) -> Diagnosis:
    """Signals in, :class:`Diagnosis` out. No I/O."""
    ev: list[str] = []
    fill = _fill(s)
    if fill is not None:
        ev.append(f"conntrack count (peak) {s.peak_count}/{s.conntrack_max} ({fill:.0%} of max)")
    ev.append(
        f"drop={s.drop} early_drop={s.early_drop} insert_failed={s.insert_failed} "
        f"clash_resolve={s.clash_resolve}"
    )
    if s.table_full_lines:
        # printk_ratelimit: at most 10 lines per 5 s, so their number is no measure of loss
        ev.append(
            "kernel logged 'table full, dropping packet' (present; the kernel rate-limits "
            "these lines, so drop counts the loss, not the number of lines)"
        )
    if s.timeouts is not None and s.lookups is not None:
        line = f"client: {s.timeouts}/{s.lookups} lookups timed out"
        if s.waited is not None and s.waited > s.timeouts:
            # musl resends every timeout/attempts: a wait that short is not a timeout
            line += f"; {s.waited - s.timeouts} more waited for a resend, under the timeout"
        ev.append(line)
    gap = _server_gap(s)
    if s.server_received is not None:
        ev.append(f"DNS servers: received {s.server_received}, answered {s.server_answered}")
    if s.node_dropped is not None:
        ev.append(f"{s.node_dropped} DNS packets entered a node and never left it")
    if s.same_port_unanswered is not None:
        ev.append(f"capture: {s.same_port_unanswered} same-port A/AAAA pairs lost an answer")
    if s.injected:
        ev.append(f"INJECTED fault {s.fault_kind or '?'} hit {s.fault_hits} packets")
    ev.extend(_resolver_notes(s))

    near_full = fill is not None and fill >= NEAR_FULL
    dropping = s.drop > 0 or s.early_drop > 0
    # 1. table exhaustion
    if s.table_full_lines > 0 or (near_full and dropping):
        strong = sum([near_full, dropping, s.table_full_lines > 0])
        conf: Confidence = "high" if strong == 3 else "medium" if strong == 2 else "low"
        return Diagnosis("exhaustion", conf, ev, exhaustion_remediation(s))
    # 2. insert race: natural (insert_failed + drop) or an injected race window
    race_window = s.injected and (s.fault_kind or "").startswith("race")
    if race_window and (s.fault_hits or 0) > 0:
        conf = (
            "high" if (s.node_dropped or 0) > 0 or (s.same_port_unanswered or 0) > 0 else ("medium")
        )
        ev.append("the race window was INJECTED by the harness: not a natural kernel race")
        return Diagnosis("insert-race", conf, ev, REMEDIATION["insert-race"], injected=True)
    if s.insert_failed > 0 and (s.drop > 0 or (s.same_port_unanswered or 0) > 0):
        conf = "high" if (s.same_port_unanswered or 0) > 0 or s.timeouts else "medium"
        return Diagnosis("insert-race", conf, ev, REMEDIATION["insert-race"])
    # 3. the servers themselves
    if gap > 0 and (s.server_received or 0) > 0:
        share = gap / (s.server_received or 1)
        conf = "high" if share >= 0.01 and not dropping else "medium" if share >= 0.001 else "low"
        ev.append(f"{gap} queries ({share:.1%}) reached the DNS servers and got no answer")
        return Diagnosis("server-overload", conf, ev, REMEDIATION["server-overload"])
    errors = s.server_errors or 0
    if errors > 0 and not dropping and (s.node_dropped or 0) == 0:
        share = errors / (s.lookups or 1)
        conf = "high" if share >= 0.01 else "medium" if share >= 0.001 else "low"
        ev.append(
            f"{errors} lookups ({share:.1%}) were answered SERVFAIL/REFUSED with no conntrack "
            "drop: the servers shed load (e.g. CoreDNS forward max_concurrent)"
        )
        return Diagnosis("server-overload", conf, ev, REMEDIATION["server-overload"])
    # 4. an injected fault with no natural signature
    if s.injected and (s.fault_hits or 0) > 0:
        return Diagnosis(
            "injected-fault", "medium", ev, REMEDIATION["injected-fault"], injected=True
        )
    # 5. nothing
    if s.clash_resolve > 0 and s.insert_failed == 0:
        ev.append("clash_resolve > 0 and insert_failed = 0: the kernel resolved every clash")
    if near_full:
        ev.append("table above 90 % of max but not dropping yet: watch it")
    unexplained = (s.timeouts or 0) > 0
    if unexplained:
        ev.append("timeouts with no conntrack, race or server signature: look elsewhere")
    conf = "low" if unexplained or near_full else "high"
    return Diagnosis("none", conf, ev, REMEDIATION["none"])


_TIME_WAIT = re.compile(r"\btcp_timeout_time_wait=(\d+)")


def phase_time_wait(phase: PhaseResult) -> int | None:
    """The TIME_WAIT timeout a phase's remediations set, if one did."""
    for label in phase["remediations"]:
        m = _TIME_WAIT.search(label)
        if m:
            return int(m.group(1))
    return None


def signals_from_phase(phase: PhaseResult) -> Signals:
    """The signals a finished phase carries in result.json."""
    ct = phase["conntrack"]
    fault: Mapping[str, object] = phase.get("fault") or (
        phase["faults"][0] if phase["faults"] else {}
    )
    hits = fault.get("hits")
    kind = fault.get("kind")
    capture = phase.get("capture")  # run --pcap: counted from the packets in the client pods
    same_port = capture["unanswered_pairs"] if capture is not None else None
    unavailable = phase.get("unavailable", {})  # read 0 there, but were not measured
    servers_unmeasured = "server_counters" in unavailable
    nodes_unmeasured = "node_dns_counters" in unavailable
    return Signals(
        conntrack_max=ct["max"],
        peak_count=ct["peak_count"],
        drop=ct["drop"],
        early_drop=ct["early_drop"],
        insert_failed=ct["insert_failed"],
        clash_resolve=ct["clash_resolve"],
        table_full_lines=ct["table_full_lines"],
        lookups=phase["dns"]["lookups"],
        timeouts=phase["dns"]["timeouts"],
        waited=phase["dns"].get("waited"),
        server_received=None if servers_unmeasured else phase["server"]["received"],
        server_answered=None if servers_unmeasured else phase["server"]["answered"],
        server_errors=phase["dns"].get("outcomes", {}).get("error"),
        node_dropped=None if nodes_unmeasured else phase["agreement"]["node_dropped"],
        same_port_unanswered=same_port,
        injected=phase["injected"],
        fault_kind=kind if isinstance(kind, str) else None,
        fault_hits=hits if isinstance(hits, int) else None,
        time_wait_s=phase_time_wait(phase),
    )


def diagnose_phase(phase: PhaseResult) -> Diagnosis:
    """:func:`classify` applied to one phase of a result."""
    return classify(signals_from_phase(phase))
