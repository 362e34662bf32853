"""The glibc model against real glibc: same resolv.conf, same server, packets compared.

Real glibc is Python's ``socket.getaddrinfo`` (AF_UNSPEC, no flags: A and AAAA) in a
subprocess under ``ip netns exec``, which bind-mounts ``/etc/netns/<pod>/resolv.conf``.
The model is :class:`GlibcResolver` on the real asyncio transport, in the same pod namespace.
Both are captured with tcpdump on the server side of the veth and their query patterns
(source port by first use, name, type, in wire order) must be equal. What the real resolver
did is printed (see it with ``pytest -s`` or in the ``-rA`` report).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import dns.flags
import dns.message
import pytest

from bench.dnsbed import (
    DROP_SECOND_QUERY_RULES,
    DROP_TABLE,
    SERVICE_NAME,
    DNSBed,
    dns_bed,
    write_pod_resolv,
)
from cthcommon.netns import run, socket_in
from loadgen.dns.fastloop import FastLoop, FastTransport
from loadgen.dns.lookup import recorded_lookup
from loadgen.dns.models.glibc import GlibcResolver
from loadgen.dns.models.musl import MuslResolver
from loadgen.dns.types import LookupRecord
from tests.kernel.loadgen.capture import Packet, describe, query_pattern, read_pcap, tcpdump

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)"),
]

SEARCH = ("default.svc.cluster.local", "svc.cluster.local", "cluster.local")
FQDN = SERVICE_NAME + "."
REAL_GETADDRINFO = r"""
import json, socket, sys, time
out = []
for name in sys.argv[1:]:
    t = time.monotonic()
    try:
        socket.getaddrinfo(name, None)
        res = "answer"
    except socket.gaierror as e:
        res = "gaierror:%s" % e.errno
    out.append([name, res, time.monotonic() - t])
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def bed(host_lock_module: None) -> Iterator[DNSBed]:
    """Its namespaces live while the module runs, under the host lock like a run's."""
    with dns_bed(1, clusterip=False) as b:
        yield b


def _real(bed: DNSBed, names: list[str]) -> list[list[object]]:
    py = "/usr/bin/python3"
    cp = run([py, "-c", REAL_GETADDRINFO, *names], netns=bed.pod_ns[0], timeout=60)
    out: list[list[object]] = json.loads(cp.stdout)
    return out


def _model(
    bed: DNSBed, resolver: GlibcResolver | MuslResolver, names: list[str]
) -> list[LookupRecord]:
    loop = FastLoop()
    t = FastTransport(bed.pod_ns[0], loop)

    async def go() -> list[LookupRecord]:
        return [await recorded_lookup(resolver, n, t, pod=bed.pod_ns[0]) for n in names]

    try:
        return loop.run_until_complete(go())
    finally:
        t.close_pool()
        loop.close()


def _capture(bed: DNSBed, path: Path) -> AbstractContextManager[Path]:
    return tcpdump(bed.server_ns, "p0", path)


def _compare(
    bed: DNSBed, tmp_path: Path, options: tuple[str, ...], names: list[str]
) -> tuple[list[Packet], list[Packet], list[list[object]], list[LookupRecord]]:
    conf = bed.resolv(*options)
    write_pod_resolv(bed.pod_ns[0], conf)
    with _capture(bed, tmp_path / "real.pcap") as p:
        real = _real(bed, names)
    real_pk = read_pcap(p)
    with _capture(bed, tmp_path / "model.pcap") as p:
        model = _model(bed, GlibcResolver(conf), names)
    model_pk = read_pcap(p)
    ip = bed.pod_ips[0]
    print(f"\n=== resolv.conf options: {' '.join(options) or '(defaults)'}; names {names}")
    print("real glibc getaddrinfo:", real)
    print(describe(real_pk, ip))
    print("glibc model:", [(r.outcome, round(r.latency_s, 3), r.source_ports) for r in model])
    print(describe(model_pk, ip))
    assert query_pattern(model_pk, ip) == query_pattern(real_pk, ip)
    # The model's own record agrees with what the wire saw.
    assert sum(r.queries_sent for r in model) == len(query_pattern(model_pk, ip))
    return real_pk, model_pk, real, model


@pytest.fixture
def cleanup_resolv(bed: DNSBed) -> Iterator[None]:
    yield
    write_pod_resolv(bed.pod_ns[0], bed.resolv())


def test_dnsmasq_answers_as_a_cluster_dns_would(bed: DNSBed) -> None:
    """A for the service, NODATA (not a lame referral) for its AAAA, NXDOMAIN elsewhere."""
    s = socket_in(bed.pod_ns[0])
    s.setblocking(True)
    s.settimeout(2)
    got = {}
    try:
        for name, qtype in [
            (FQDN, "A"),
            (FQDN, "AAAA"),
            ("x.default.svc.cluster.local.", "A"),
            ("example.org.", "A"),
        ]:
            s.sendto(dns.message.make_query(name, qtype).to_wire(), (bed.server_ip, 53))
            msg = dns.message.from_wire(s.recv(4096))
            got[(name, qtype)] = msg
    finally:
        s.close()
    assert len(got[(FQDN, "A")].answer) == 1
    aaaa = got[(FQDN, "AAAA")]
    print(
        "AAAA reply:",
        dns.rcode.to_text(aaaa.rcode()),
        dns.flags.to_text(aaaa.flags),
        "answers",
        len(aaaa.answer),
    )
    assert aaaa.rcode() == 0
    assert not aaaa.answer
    # glibc would treat NOERROR + no answer + no AA + no RA + no additional as "next server".
    assert aaaa.flags & (dns.flags.AA | dns.flags.RA)
    assert got[("x.default.svc.cluster.local.", "A")].rcode() == dns.rcode.NXDOMAIN
    assert got[("example.org.", "A")].rcode() == dns.rcode.NXDOMAIN


@pytest.mark.usefixtures("cleanup_resolv")
def test_default_parallel_pair_per_search_candidate(bed: DNSBed, tmp_path: Path) -> None:
    real_pk, _, real, model = _compare(bed, tmp_path, (), ["my-service.default"])
    pattern = query_pattern(real_pk, bed.pod_ips[0])
    assert pattern == [
        (0, "my-service.default.default.svc.cluster.local.", "A"),
        (0, "my-service.default.default.svc.cluster.local.", "AAAA"),
        (1, "my-service.default.svc.cluster.local.", "A"),
        (1, "my-service.default.svc.cluster.local.", "AAAA"),
    ]
    assert real[0][1] == "answer"
    assert model[0].outcome == "answer"
    # dnsmasq answers within ~50 us, as fast as glibc's sendmmsg pair leaves, so the wire
    # cannot show "parallel"; the model's own clock can: AAAA sent before A's reply.
    a, aaaa = model[0].attempts[:2]
    assert a.latency_s is not None
    assert aaaa.t_sent < a.t_sent + a.latency_s


@pytest.mark.usefixtures("cleanup_resolv")
def test_external_name_walks_search_list(bed: DNSBed, tmp_path: Path) -> None:
    real_pk, _, _, model = _compare(bed, tmp_path, (), ["example.org"])
    pattern = query_pattern(real_pk, bed.pod_ips[0])
    assert len(pattern) == 8
    assert [n for _, n, _ in pattern[::2]] == [f"example.org.{d}." for d in SEARCH] + [
        "example.org."
    ]
    assert model[0].outcome == "nxdomain"


@pytest.mark.usefixtures("cleanup_resolv")
def test_single_request_reopen_new_port_per_query(bed: DNSBed, tmp_path: Path) -> None:
    real_pk, _, _, _ = _compare(bed, tmp_path, ("single-request-reopen",), ["my-service.default"])
    pattern = query_pattern(real_pk, bed.pod_ips[0])
    assert [i for i, _, _ in pattern] == [0, 1, 2, 3]


@pytest.mark.usefixtures("cleanup_resolv")
def test_single_request_sequential_same_port(bed: DNSBed, tmp_path: Path) -> None:
    real_pk, _, _, _ = _compare(bed, tmp_path, ("single-request",), ["my-service.default"])
    pattern = query_pattern(real_pk, bed.pod_ips[0])
    assert [i for i, _, _ in pattern] == [0, 0, 1, 1]
    q = [p for p in real_pk if not p.is_reply]
    a_reply = next(p for p in real_pk if p.is_reply and p.qtype == "A")
    assert q[1].qtype == "AAAA"
    assert q[1].t >= a_reply.t


@pytest.fixture
def drop_second_query(bed: DNSBed) -> Iterator[None]:
    srv = bed.server_ns
    run(["sysctl", "-qw", "net.netfilter.nf_conntrack_acct=1"], netns=srv)
    run(["nft", "-f", "-"], netns=srv, input_=DROP_SECOND_QUERY_RULES)
    try:
        yield
    finally:
        run(["nft", "delete", "table", "inet", DROP_TABLE], netns=srv, check=False)
        write_pod_resolv(bed.pod_ns[0], bed.resolv())


def _dropped(bed: DNSBed) -> int:
    out = run(["nft", "list", "table", "inet", DROP_TABLE], netns=bed.server_ns).stdout
    return int(out.split("counter packets ")[1].split()[0])


@pytest.mark.usefixtures("drop_second_query")
def test_dropped_aaaa_waits_timeout_then_sticky_fallback(bed: DNSBed, tmp_path: Path) -> None:
    timeout = 1
    names = [FQDN, FQDN, FQDN]  # three lookups in one process
    real_pk, _model_pk, real, model = _compare(bed, tmp_path, (f"timeout:{timeout}",), names)
    print("nft drops (real + model):", _dropped(bed))
    ip = bed.pod_ips[0]
    pattern = query_pattern(real_pk, ip)
    # 1st lookup: pair on one port, AAAA lost, after `timeout` both again on that port.
    assert [(i, t) for i, _, t in pattern[:4]] == [(0, "A"), (0, "AAAA"), (0, "A"), (0, "AAAA")]
    q = [p for p in real_pk if not p.is_reply and p.src == ip]
    assert q[2].t - q[0].t == pytest.approx(timeout, abs=0.1)
    real_lat = [float(str(r[2])) for r in real]
    model_lat = [r.latency_s for r in model]
    assert real_lat[0] == pytest.approx(timeout, abs=0.15)
    assert model_lat[0] == pytest.approx(timeout, abs=0.15)
    assert model[0].full_timeout_waits == 1
    # Later lookups in the same process never send a parallel pair again.
    for lk in (1, 2):
        assert model_lat[lk] == pytest.approx(real_lat[lk], abs=0.15)
    assert [r.full_timeout_waits for r in model] == [
        1 if lat > timeout / 2 else 0 for lat in real_lat
    ]
    assert _dropped(bed) >= 2


@pytest.mark.usefixtures("cleanup_resolv")
def test_musl_model_keeps_same_socket_pair_with_single_request_reopen(
    bed: DNSBed, tmp_path: Path
) -> None:
    conf = bed.resolv("single-request-reopen")
    with _capture(bed, tmp_path / "musl.pcap") as p:
        recs = _model(bed, MuslResolver(conf), [FQDN])
    pk = read_pcap(p)
    print("\n=== musl model, options single-request-reopen\n" + describe(pk, bed.pod_ips[0]))
    pattern = query_pattern(pk, bed.pod_ips[0])
    assert pattern == [(0, FQDN, "A"), (0, FQDN, "AAAA")]
    a, aaaa = recs[0].attempts
    assert a.latency_s is not None
    assert aaaa.t_sent < a.t_sent + a.latency_s  # sent without waiting for A's reply
    assert recs[0].outcome == "answer"
