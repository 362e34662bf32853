"""The shape of ``result.json``: the contract reports, CI and other tools rely on.

Typed with TypedDicts so the JSON on disk and the code that builds it cannot drift apart.
Every phase carries ``injected``: true when a fault was injected (never a natural result).
"""

from typing import TYPE_CHECKING, Literal, NotRequired, TypedDict

from cthcommon.loadresult import HTTPResult, LatencyHist, LatencyMs  # built by the workers
from harness.results.endpoints import EndpointsResult
from harness.results.kubeproxy import KubeProxyPhase
from harness.results.rollout import RolloutResult
from harness.results.statsd import StatsdPhase

if TYPE_CHECKING:
    from harness.results.locust import LocustResult  # it builds on LatencyMs below
    from loadgen.udp.sameport import SamePortResult

SCHEMA_VERSION = 1
# "inconclusive": every expectation held, but a phase with expectations was not measured in
# its load's steady state (steady_state.reason says why): never a pass (exit 6)
Verdict = Literal["pass", "fail", "inconclusive", "error"]


class RateCI(TypedDict):
    """A proportion with its 95 % Wilson interval."""

    rate: float
    low: float
    high: float


class DNSResult(TypedDict):
    lookups: int
    timeouts: int  # lookups that waited at least one full resolver timeout
    timeout_rate: float
    timeout_rate_ci: RateCI
    failed: int  # lookups that ended with no answer at all
    failed_rate: float
    # given up at phase end after one full timeout wait (counted in timeouts, not failed)
    unfinished: NotRequired[int]
    full_timeout_waits: int
    full_timeout_rate: float
    queries_sent: int
    queries_unanswered: int
    queries_per_lookup: float
    latency_ms: LatencyMs
    resolver: str
    timeline: list[list[float]]  # [t_s, lookups, timeouts] per second
    latency_hist: NotRequired[LatencyHist]
    by_name: NotRequired[dict[str, dict[str, float]]]
    # final outcome counts: answer / nxdomain / nodata / timeout / error (SERVFAIL, REFUSED)
    outcomes: NotRequired[dict[str, int]]
    # lookups that waited for any retransmit (musl resends every timeout/attempts), whether
    # or not they then became timeouts; and per resolver model: lookups, waited, timeouts
    waited: NotRequired[int]
    waited_rate: NotRequired[float]
    by_resolver: NotRequired[dict[str, dict[str, int]]]
    latency_sum_s: NotRequired[float]  # all lookup latencies added up (histogram _sum)


class StatesTaken(TypedDict):
    """When a node's state snapshot was taken: time in phase, count then, count / max."""

    t_s: float
    count: int
    fill: float
    why: str  # "first reached 90% of max" or "end of phase"


class NodeConntrack(TypedDict):
    node: str
    max: int
    peak_count: int
    drop: int
    early_drop: int
    insert_failed: int
    clash_resolve: int
    insert: int
    invalid: int
    table_full_lines: int
    # NOT at the peak: one `conntrack -L`, taken when the count first reached 90 % of max
    # (mid-fill in a table that fills) or else at the end; states_taken says when
    states_at_peak: dict[str, int]
    dns_entries: int  # conntrack entries of pods' DNS flows in that snapshot
    states_taken: NotRequired[StatesTaken]
    dns_in: int  # DNS queries from pods into the node (before conntrack; TCP: data segments)
    dns_out: int  # DNS queries that left the node towards the DNS service
    timeline: list[list[float]]  # [t_s, count] or [t_s, count, drop_total_so_far]


class ConntrackResult(TypedDict):
    max: int
    peak_count: int
    peak_fill: float
    drop: int
    early_drop: int
    insert_failed: int
    clash_resolve: int
    table_full_lines: int
    dns_entries: int
    table_full_log: list[str]
    nodes: list[NodeConntrack]


class ServerResult(TypedDict):
    """Counted in the DNS server pods' own namespaces (nft counters)."""

    received: int
    answered: int
    per_pod: NotRequired[dict[str, dict[str, int]]]  # replica -> received/answered
    upstream_received: NotRequired[int]  # queries CoreDNS forwarded to the upstream resolver


class ExpectationResult(TypedDict):
    expect: str
    observed: float | None
    ok: bool
    # "window": observed on the phase's steady window (steady_state.window), not the whole
    # phase (a natural phase that reached its steady state late: steady_state.judged_on)
    judged_on: NotRequired[str]


class Agreement(TypedDict):
    """Client-side vs kernel-side accounting of lost DNS queries."""

    client_unanswered: int
    node_dropped: int  # DNS packets that entered a node and never left it
    server_unanswered: int  # received by the DNS pods but not answered
    explained: str


class AlertResult(TypedDict):
    """A Prometheus alert rule evaluated over the phase's sampled series."""

    expr: str
    for_s: float
    fired: bool
    nodes: list[str]  # nodes on which it fired
    max_ratio: float


class DiagnosisResult(TypedDict):
    cause: str
    injected: bool
    confidence: str
    remediation: str
    evidence: list[str]


class RaceResult(TypedDict):
    """The natural A/AAAA race attempt, in the vocabulary the issue asks for."""

    # "reproduced: ..." | "kernel resolved N clashes, 0 drops" | "inconclusive: ..." |
    # "confounded: ..." (the table was full: lost replies are exhaustion, not the race)
    verdict: str
    kernel: str
    pairs_sent: int
    replies_missing: int
    insert_failed: dict[str, int]
    drop: dict[str, int]
    clash_resolve: dict[str, int]


class CaptureResult(TypedDict):
    """``run --pcap``: tcpdump in the client pods; what the unanswered same-port pairs were."""

    file: str  # in the bug bundle: pcap/<phase>.pcap, only the unanswered pairs' packets
    tool: str
    where: str
    queries: int
    same_port_pairs: int
    unanswered_pairs: int
    unanswered_queries: int
    kernel_dropped: int  # packets tcpdump's buffer lost


class FaultResult(TypedDict):
    """The injected race-window drop, counted where it runs."""

    kind: str  # "race-window"
    injected: bool
    probability: float
    hits: int  # second packets of a pair the drop took
    pinned_cpus: bool  # the DNS servers pinned to one CPU (the A answer cannot overtake)
    # second packets of a pair still unanswered (the window P draws from), or after the first
    # answer (closed: that pair could not be hit); read where the fault table's named
    # counters can be read (netns, kind; not an existing cluster's nodes)
    window_open: NotRequired[int]
    answered_first: NotRequired[int]


class Comparison(TypedDict):
    """A remediated phase against its baseline."""

    baseline: str
    phase: str
    metric: str
    before: float
    after: float
    change: float  # relative: (after - before) / before
    p_value: float | None
    sentence: str


class SteadyStateResult(TypedDict):
    """Was the phase measured in its load's steady state (``harness.steady``)?

    ``expected_occupancy``: entries the load holds once it has run one lifetime (each flow
    kind's rate x lifetime, pools as their size), ``level``: that capped at ``max``;
    ``time_to_steady_s``: seconds after the load started when the busiest node's count came
    within 10 % of the level (None: never); ``natural_time_to_steady_s``: what a load
    without warm-up needs; ``window``: the lookups made from then on; ``warmup``: how the
    table was brought there (labelled; ``method`` "none" for a natural phase).
    ``judged_on``: "phase" (the whole phase is steady) or "window" (a natural phase that got
    there late: its DNS expectations are judged on ``window``'s lookups and timeouts, while
    ``dns`` keeps the whole phase's); ``model_basis``: how a load not known in advance (a
    locustfile) was modelled from the rates the phase observed; a phase not reached has
    ``needed_duration_s`` (the shortest natural phase that would be judged) and ``advice``
    (what would make it conclusive)."""

    verdict: Literal["steady", "inconclusive"]
    reached: bool
    reason: str
    max: int
    expected_occupancy: float
    level: float
    occupancy_vs_max: float
    observed_mean: float
    observed_vs_max: float
    node: str
    time_to_steady_s: float | None
    natural_time_to_steady_s: float
    flows: list[dict[str, object]]
    window: dict[str, float]
    warmup: NotRequired[dict[str, object]]
    judged_on: NotRequired[Literal["phase", "window"]]
    model_basis: NotRequired[str]
    needed_duration_s: NotRequired[float | None]
    advice: NotRequired[str]


class PhaseResult(TypedDict):
    name: str
    repeat_index: int
    remediations: list[str]
    injected: bool
    faults: list[dict[str, object]]
    duration_s: float
    dns: DNSResult
    http: HTTPResult | None
    locust: NotRequired["LocustResult"]  # a locustfile load (instead of the raw client's http)
    conntrack: ConntrackResult
    server: ServerResult
    node: dict[str, int]
    agreement: Agreement
    fault: NotRequired[FaultResult]
    expectations: list[ExpectationResult]
    verdict: Verdict
    alerts: NotRequired[dict[str, AlertResult]]
    diagnosis: NotRequired[DiagnosisResult]
    race: NotRequired[RaceResult]
    capture: NotRequired[CaptureResult]
    steady_state: NotRequired[SteadyStateResult]
    # what this backend could not measure in the phase: field -> why (empty when everything was)
    unavailable: NotRequired[dict[str, str]]
    # what the backend noticed while measuring that bears on reading the figures (a sampler
    # that fell back to commands, a load start taken from the harness's cue, a pin_cpus not
    # applied, ...); empty when nothing was
    notes: NotRequired[list[str]]
    rollout: NotRequired[RolloutResult]  # a CoreDNS rollout during the load (netns)
    udp: NotRequired["SamePortResult"]  # the same-port UDP client (netns)
    endpoints: NotRequired[EndpointsResult]  # endpoint events, stale entries (netns)
    statsd: NotRequired[StatsdPhase]  # the one-way sender, counted at the receivers (netns)
    kube_proxy: NotRequired[KubeProxyPhase]  # its syncs, reconciles, RSS vs the table (netns, kind)


class Environment(TypedDict):
    kernel: str
    backend: str
    hostname: str
    cpus: NotRequired[int]  # os.cpu_count() of the machine that ran it
    python: str
    sysctls: dict[str, str]
    tools: dict[str, str]
    # the upstream Kubernetes parts a backend ran: name -> {"version", "source"}
    components: NotRequired[dict[str, dict[str, str]]]


class RunResult(TypedDict):
    schema_version: int
    run_id: str
    scenario: str
    scenario_file: str | None
    started_at: str
    finished_at: str
    command: str
    verdict: Verdict
    environment: Environment
    phases: list[PhaseResult]
    comparisons: NotRequired[list[Comparison]]
    # verdict "error": the run failed after measuring these phases; what failed, in words
    error: NotRequired[str]
