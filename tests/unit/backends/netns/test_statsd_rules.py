"""The node and server nft counters tell the statsd sender's datagrams apart from DNS by
length, so neither is counted as the other (pure: the ruleset text)."""

from __future__ import annotations

import pytest

from harness.backends.netns.topology import obs_ruleset, server_ruleset
from harness.scenario.expect import Expectation
from loadgen.udp.statsd import MAX_UDP_LENGTH

pytestmark = pytest.mark.unit


def _udp53(rules: str) -> list[str]:
    return [line.strip() for line in rules.splitlines() if "udp dport 53" in line]


@pytest.mark.parametrize("rules", [obs_ruleset(), server_ruleset()])
def test_every_udp_port_53_counter_is_on_one_side_of_the_length(rules: str) -> None:
    lines = _udp53(rules)
    assert lines
    for line in lines:
        statsd = f"udp length <= {MAX_UDP_LENGTH}" in line
        dns = f"udp length > {MAX_UDP_LENGTH}" in line
        assert statsd != dns, line
        assert ('name "statsd_' in line) == statsd, line


def test_the_node_counts_where_the_datagrams_went() -> None:
    rules = obs_ruleset()
    for name in ("statsd_svc", "statsd_in", "statsd_fwd", "statsd_local", "statsd_out"):
        assert f'counter name "{name}"' in rules
    assert "hook forward priority -500" in rules  # before kube-proxy's filter rules
    assert 'counter name "statsd_rx"' in server_ruleset()


@pytest.mark.parametrize(
    "text",
    [
        "statsd.blackholed_rate <= 0.05",
        "statsd.delivered > 0",
        "statsd.rejected > 0",
        "kube_proxy.reconcile_count > 0",
        "kube_proxy.rss_kib_max > 0",
    ],
)
def test_the_new_metrics_are_expectations(text: str) -> None:
    assert str(Expectation.parse(text)) == text
