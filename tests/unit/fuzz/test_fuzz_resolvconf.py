"""Fuzz resolv.conf parsing: lenient parsing never raises, strict parsing raises only BadInput."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cthcommon.errors import BadInput
from cthcommon.resolvconf import ResolvConf

pytestmark = pytest.mark.fuzz

KEYWORDS = ["nameserver", "search", "domain", "options", "sortlist", "#", ";", "NAMESERVER", ""]
OPTION_NAMES = [
    "ndots",
    "timeout",
    "attempts",
    "rotate",
    "single-request",
    "single-request-reopen",
    "use-vc",
    "edns0",
    "trust-ad",
    "inet6",
    "x",
]
numbers = st.one_of(
    st.integers(-5, 100).map(str),
    st.integers(4290, 4400).map(lambda n: "7" * n),  # around int()'s 4300-digit limit
    st.sampled_from(
        ["", "\u00b2", "\u0663", "\U0001d7d7", "1.5", "+1", " 1", "0x10", "1e3", "\u0661\u0660"]
    ),
)
words = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["10.96.0.10", "::1", "fe80::1%eth0", "1.2.3.4.5", "cluster.local.", "."]),
    st.builds(lambda n, v: f"{n}:{v}", st.sampled_from(OPTION_NAMES), numbers),
)
lines = st.builds(
    lambda k, ws, sep: k + sep + " ".join(ws),
    st.sampled_from(KEYWORDS),
    st.lists(words, max_size=8),
    st.sampled_from([" ", "\t", "  ", ""]),
)
texts = st.one_of(
    st.lists(lines, max_size=12).map("\n".join),
    st.text(max_size=300),
    st.lists(st.one_of(lines, st.text(max_size=40)), max_size=12).map("\r\n".join),
)


@given(texts)
def test_lenient_parse_never_raises(text: str) -> None:
    conf = ResolvConf.parse(text, strict=False)
    assert 0 <= len(conf.nameservers) <= 3
    assert conf.ndots >= 0
    assert conf.timeout >= 1
    assert conf.attempts >= 1


@given(texts)
def test_strict_parse_raises_only_bad_input(text: str) -> None:
    try:
        conf = ResolvConf.parse(text, strict=True)
    except BadInput as e:
        field = e.field
    else:
        # what strict accepts, lenient reads the same way
        assert ResolvConf.parse(text) == conf
        return
    assert field  # the error names the field


@given(texts)
def test_render_of_a_parse_parses_back_the_same(text: str) -> None:
    conf = ResolvConf.parse(text)
    again = ResolvConf.parse(conf.render())
    assert (again.nameservers, again.ndots, again.timeout, again.attempts, again.flags) == (
        conf.nameservers,
        conf.ndots,
        conf.timeout,
        conf.attempts,
        conf.flags,
    )
