"""The c-ares model against real c-ares: Node.js's ``dns.Resolver``, which runs the c-ares it
bundles (``process.versions.ares``), in a pod namespace, captured with tcpdump beside the model
(:class:`CAresResolver` with Node's embedding: 4 tries, its 1 s timeout timer, NOCHECKRESP) on
the real transport, against the same dnsmasq. And ``pycares`` (PyPI; it bundles its own
c-ares and drives it with c-ares' own event thread, so timeouts fire when due) for the model
with c-ares' own defaults (3 tries) and ``ares_getaddrinfo``'s search walk.

Compared: source-port reuse across lookups (none when they never overlap), A and AAAA of one
lookup on one socket, concurrent lookups sharing one socket until the server has a failure and
each query getting a new port from then on, and the retry schedule when every reply is dropped
(an nft rule in the server's namespace), cold (2000 ms) and after three answers (the 250 ms
floor of c-ares' latency-based timeout). Node's ``resolve4``/``resolve6`` do not walk the
search list (``ares_query``), so the names are absolute. What each side did is printed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.dnsbed import SERVICE_NAME, DNSBed, dns_bed, write_pod_resolv
from cthcommon.netns import exec_argv, run
from harness.kernel.journal import HostLock
from loadgen.dns.fastloop import FastLoop, FastTransport
from loadgen.dns.lookup import recorded_lookup
from loadgen.dns.models.base import Family
from loadgen.dns.models.cares import LIBRARY, NODE, CAresResolver, Embedding
from loadgen.dns.types import LookupRecord
from tests.kernel.loadgen.capture import Packet, describe, query_pattern, read_pcap, tcpdump

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
    pytest.mark.skipif(shutil.which("node") is None, reason="Node.js (real c-ares) not installed"),
]

FQDN = SERVICE_NAME + "."
TABLE = "cth_cares_drop"
NODE_SCRIPT = r"""
const dns = require('dns');
const fs = require('fs');
const r = new dns.Resolver();
const N = process.argv[1];  // node -e SCRIPT NAME MODE [FLAG]: no script path in argv
const mode = process.argv[2];
function q(fn) {
  return new Promise((res) => {
    const s = process.hrtime.bigint();
    r[fn](N, (err) => res([fn, err ? err.code : 'ok', Number(process.hrtime.bigint() - s) / 1e9]));
  });
}
const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
(async () => {
  const out = [];
  if (mode === 'pairs') {
    for (let i = 0; i < 3; i++) out.push(await Promise.all([q('resolve4'), q('resolve6')]));
  } else if (mode === 'busy') {
    const ps = [];
    for (let i = 0; i < 8; i++) { ps.push(q('resolve4')); await sleep(250); }
    out.push(await Promise.all(ps));
  } else if (mode === 'one') {
    out.push(await q('resolve4'));
  } else if (mode === 'warm') {
    for (let i = 0; i < 5; i++) out.push(await q('resolve4'));
    console.log('ready');
    while (!fs.existsSync(process.argv[3])) await sleep(10);
    out.push(await q('resolve4'));
  }
  console.log(JSON.stringify(out));
})();
"""


PYCARES_SCRIPT = r"""
import json, socket, sys, threading, time
import pycares
ch = pycares.Channel()  # c-ares' own defaults, /etc/resolv.conf, its event thread
out = []
for name in sys.argv[1:]:
    done = threading.Event()
    got = []
    def cb(result, error, got=got, done=done):
        got.append(error)
        done.set()
    t = time.monotonic()
    ch.getaddrinfo(name, None, family=socket.AF_UNSPEC, callback=cb)
    done.wait(120)
    out.append([name, got[0] if got and got[0] else "ok", time.monotonic() - t])
print(json.dumps([out, pycares.ARES_VERSION]))
"""
needs_pycares = pytest.mark.skipif(
    importlib.util.find_spec("pycares") is None, reason="pycares (real c-ares) not installed"
)


@pytest.fixture(scope="module")
def bed() -> Iterator[DNSBed]:
    with HostLock(wait_s=1800), dns_bed(1) as b:
        write_pod_resolv(b.pod_ns[0], b.resolv())
        yield b


def _drop(bed: DNSBed, on: bool) -> None:
    if on:
        rules = (
            f"table inet {TABLE} {{\n chain input {{\n"
            "  type filter hook input priority filter; policy accept;\n"
            "  udp dport 53 counter drop\n }\n}\n"
        )
        run(["nft", "-f", "-"], netns=bed.server_ns, input_=rules)
    else:
        run(["nft", "delete", "table", "inet", TABLE], netns=bed.server_ns, check=False)


@pytest.fixture
def dropping(bed: DNSBed) -> Iterator[None]:
    _drop(bed, True)
    try:
        yield
    finally:
        _drop(bed, False)


def _real(bed: DNSBed, mode: str, tmp_path: Path) -> tuple[list[Packet], str]:
    with tcpdump(bed.server_ns, "p0", tmp_path / f"real-{mode}.pcap") as p:
        if mode == "warm":
            flag = tmp_path / "go"
            argv = ["node", "-e", NODE_SCRIPT, FQDN, mode, str(flag)]
            proc = subprocess.Popen(
                exec_argv(bed.pod_ns[0], argv), stdout=subprocess.PIPE, text=True
            )
            try:
                assert proc.stdout is not None
                assert proc.stdout.readline().strip() == "ready"
                _drop(bed, True)
                flag.touch()
                out, _ = proc.communicate(timeout=120)
            finally:
                _drop(bed, False)
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        else:
            cp = run(["node", "-e", NODE_SCRIPT, FQDN, mode], netns=bed.pod_ns[0], timeout=120)
            out = cp.stdout
    return read_pcap(p), out.strip()


def _pycares(bed: DNSBed, names: list[str], tmp_path: Path) -> tuple[list[Packet], str]:
    with tcpdump(bed.server_ns, "p0", tmp_path / "pycares.pcap") as p:
        cp = run([sys.executable, "-c", PYCARES_SCRIPT, *names], netns=bed.pod_ns[0], timeout=120)
    return read_pcap(p), cp.stdout.strip()


def _model(
    bed: DNSBed,
    mode: str,
    tmp_path: Path,
    family: Family,
    *,
    embedding: Embedding = NODE,
    names: tuple[str, ...] = (FQDN,),
) -> tuple[list[Packet], list[LookupRecord]]:
    loop = FastLoop()
    t = FastTransport(bed.pod_ns[0], loop)
    model = CAresResolver(bed.resolv(), family, embedding)
    records: list[LookupRecord] = []

    async def one() -> None:
        records.append(await recorded_lookup(model, names[len(records) % len(names)], t))

    async def later(delay: float) -> None:
        await t.recv_ids([], frozenset(), t.now() + delay)  # a plain sleep on this loop
        await one()

    async def seq(n: int) -> None:
        for _ in range(n):
            await one()

    try:
        with tcpdump(bed.server_ns, "p0", tmp_path / f"model-{mode}.pcap") as p:
            if mode in ("pairs", "one", "gai"):
                loop.run_until_complete(seq({"pairs": 3, "one": 1, "gai": len(names)}[mode]))
            elif mode == "busy":
                done: list[None] = []
                for i in range(8):
                    loop.spawn(later(0.25 * i), done.append)
                while len(done) < 8:
                    loop.run_once(0.05)
            elif mode == "warm":
                loop.run_until_complete(seq(5))
                _drop(bed, True)
                try:
                    loop.run_until_complete(seq(1))
                finally:
                    _drop(bed, False)
    finally:
        t.close_pool()
        loop.close()
    return read_pcap(p), records


def _show(title: str, pk: list[Packet], ip: str, what: object) -> None:
    print(f"\n=== {title}: {what}")
    print(describe(pk, ip))


def _queries(pk: list[Packet], ip: str) -> list[Packet]:
    return [p for p in pk if not p.is_reply and p.src == ip]


def test_a_and_aaaa_share_a_port_and_idle_lookups_get_new_ones(bed: DNSBed, tmp_path: Path) -> None:
    ip = bed.pod_ips[0]
    real_pk, real = _real(bed, "pairs", tmp_path)
    model_pk, model = _model(bed, "pairs", tmp_path, "any")
    _show(f"real c-ares (Node {_ares_version()})", real_pk, ip, real)
    _show("c-ares model", model_pk, ip, [(r.outcome, r.source_ports) for r in model])
    pattern = query_pattern(real_pk, ip)
    assert pattern == query_pattern(model_pk, ip)
    assert [i for i, _, _ in pattern] == [0, 0, 1, 1, 2, 2]
    assert all(r.outcome == "answer" for r in model)


def test_concurrent_lookups_share_a_port_until_a_timeout_then_every_query_gets_a_new_one(
    bed: DNSBed, tmp_path: Path, dropping: None
) -> None:
    ip = bed.pod_ips[0]
    real_pk, real = _real(bed, "busy", tmp_path)
    model_pk, model = _model(bed, "busy", tmp_path, "ipv4")
    _show("real c-ares, a lookup every 250 ms, nothing answered", real_pk, ip, real)
    _show("c-ares model", model_pk, ip, [(r.outcome, r.latency_s) for r in model])
    for pk in (real_pk, model_pk):
        qs = _queries(pk, ip)
        t0 = qs[0].t
        first_wave = [q for q in qs if q.t - t0 < 2.5]
        later = [q for q in qs if q.t - t0 >= 2.5]
        assert len(first_wave) == 8
        assert len({q.sport for q in first_wave}) == 1  # busy: one socket for all eight
        # after a timeout: a socket, so a port, for each query. Queries sent together hold
        # their sockets together: their ports differ. Across retry waves the earlier sockets
        # are closed, and the kernel's random ephemeral pick may land on a port again (a CI
        # run saw one of 24 do so, about a 1 % chance per side): rare, never the rule.
        waves: dict[int, list[int]] = {}
        for q in later:
            waves.setdefault(round(q.t - t0), []).append(q.sport)
        for ports in waves.values():
            assert len(set(ports)) == len(ports), waves
        assert len({q.sport for q in later}) >= len(later) - 2, waves
        assert len(qs) == 8 * 4  # Node's 4 tries
    assert all(r.outcome == "timeout" for r in model)
    assert '"ETIMEOUT"' in real


def _sends(pk: list[Packet], ip: str) -> list[float]:
    qs = _queries(pk, ip)
    return [q.t - qs[0].t for q in qs]


def _check_schedule(sends: list[float], end: float, base: float, tick: float) -> None:
    """c-ares' schedule under Node: try k waits base << k, later ones shortened by up to half,
    acted on at the next tick of a 1 s timer."""
    assert len(sends) == 4
    waits = [b - a for a, b in zip(sends, [*sends[1:], end], strict=True)]
    for k, w in enumerate(waits):
        full = base * (1 << k)
        low = full if k == 0 else full / 2
        assert low - 0.05 <= w <= full + tick + 0.05, (k, w, waits)


def test_retries_when_every_reply_is_dropped(bed: DNSBed, tmp_path: Path, dropping: None) -> None:
    ip = bed.pod_ips[0]
    real_pk, real = _real(bed, "one", tmp_path)
    model_pk, model = _model(bed, "one", tmp_path, "ipv4")
    _show("real c-ares, nothing answered", real_pk, ip, real)
    _show("c-ares model", model_pk, ip, [(r.outcome, r.latency_s) for r in model])
    real_end = json.loads(real)[0][2]
    rs, ms = _sends(real_pk, ip), _sends(model_pk, ip)
    _check_schedule(rs, real_end, 2.0, 1.0)
    _check_schedule(ms, model[0].latency_s, 2.0, 1.0)
    assert abs(rs[1] - ms[1]) < 0.15  # the first retry: the first tick after 2000 ms
    for pk in (real_pk, model_pk):
        assert len({q.sport for q in _queries(pk, ip)}) == 4  # every try from a new port


def test_after_three_answers_a_lost_reply_is_retried_at_the_next_tick(
    bed: DNSBed, tmp_path: Path
) -> None:
    ip = bed.pod_ips[0]
    real_pk, real = _real(bed, "warm", tmp_path)
    model_pk, model = _model(bed, "warm", tmp_path, "ipv4")
    _show("real c-ares: 5 answered, then nothing answered", real_pk, ip, real)
    _show("c-ares model", model_pk, ip, [(r.outcome, r.latency_s) for r in model])
    real_end = json.loads(real)[-1][2]
    for pk, end in ((real_pk, real_end), (model_pk, model[-1].latency_s)):
        lost = _queries(pk, ip)[5:]
        sends = [q.t - lost[0].t for q in lost]
        # 250 ms (the floor; 5 x the sub-ms latency) doubling, each acted on at a 1 s tick
        assert [round(s) for s in sends] == [0, 1, 2, 3]
        assert 4.5 <= end <= 5.5
    assert model[-1].outcome == "timeout"


def _ares_version() -> str:
    cp = subprocess.run(
        ["node", "-p", "process.versions.ares"], capture_output=True, text=True, check=False
    )
    return cp.stdout.strip()


@needs_pycares
def test_getaddrinfo_walks_the_search_list_on_one_port(bed: DNSBed, tmp_path: Path) -> None:
    """c-ares' own defaults: ares_getaddrinfo sends the next search candidate from inside the
    pass that ended the previous one, so the whole walk leaves from one port."""
    ip = bed.pod_ips[0]
    # one lookup: the library's query cache (on by default, off in Node; not modelled) would
    # answer a second lookup's AAAA from the first's NODATA
    names = ["my-service.default"]
    real_pk, real = _pycares(bed, names, tmp_path)
    model_pk, model = _model(bed, "gai", tmp_path, "any", embedding=LIBRARY, names=tuple(names))
    _show("real c-ares (pycares), getaddrinfo AF_UNSPEC", real_pk, ip, real)
    _show("c-ares model", model_pk, ip, [(r.outcome, r.source_ports) for r in model])
    pattern = query_pattern(real_pk, ip)
    assert pattern == query_pattern(model_pk, ip)
    # a walk of two candidates, A and AAAA each, on one port
    assert [i for i, _, _ in pattern] == [0] * 4
    assert [r.outcome for r in model] == ["answer"]


@needs_pycares
def test_library_defaults_try_3_times_when_every_reply_is_dropped(
    bed: DNSBed, tmp_path: Path, dropping: None
) -> None:
    """c-ares' own 2000 ms and 3 tries, timeouts acted on when due (no embedder's tick)."""
    ip = bed.pod_ips[0]
    real_pk, real = _pycares(bed, [FQDN], tmp_path)
    model_pk, model = _model(bed, "gai", tmp_path, "any", embedding=LIBRARY, names=(FQDN,))
    _show("real c-ares (pycares), nothing answered", real_pk, ip, real)
    _show("c-ares model", model_pk, ip, [(r.outcome, r.latency_s) for r in model])
    real_end = json.loads(real)[0][0][2]
    for pk, end in ((real_pk, real_end), (model_pk, model[0].latency_s)):
        qs = _queries(pk, ip)
        assert len(qs) == 2 * 3  # A and AAAA, 3 tries each
        assert qs[0].sport == qs[1].sport  # the pair on one socket
        # retries leave from new ports (Node's 1.34.6: one each; pycares' 1.34.9 puts the
        # retries of one pass on one new socket, see the model's notes)
        assert all(q.sport != qs[0].sport for q in qs[2:])
        a = [q.t - qs[0].t for q in qs if q.qtype == "A"]
        assert abs(a[1] - 2.0) < 0.1  # when due: 2000 ms
        assert 2.0 - 0.05 <= a[2] - a[1] <= 4.0 + 0.05  # 4000 ms shortened by up to half
        assert 2.0 + 2.0 + 4.0 - 0.1 <= end <= 2.0 + 4.0 + 8.0 + 0.2
    assert model[0].outcome == "timeout"
