"""The HTML report's Locust table for a phase whose HTTP load was a locustfile."""

from __future__ import annotations

from html import escape
from pathlib import Path

from harness.results.schema import PhaseResult


def locust_section(p: PhaseResult) -> str:
    """Requests, failures, rps and latency per endpoint, then failures by error ("" when the
    phase ran the raw client)."""
    loc = p.get("locust")
    if loc is None:
        return ""
    rows = [
        f"<tr><td>{escape(e['method'])}</td><td>{escape(e['name'])}</td>"
        f"<td class=n>{e['requests']}</td><td class=n>{e['failures']}</td>"
        f"<td class=n>{e['rps']:.1f}</td><td class=n>{e['latency_ms']['p50']:.0f}</td>"
        f"<td class=n>{e['latency_ms']['p99']:.0f}</td></tr>"
        for e in loc["endpoints"]
    ]
    lat = loc["latency_ms"]
    rows.append(
        f"<tr><th colspan=2>total</th><th class=n>{loc['requests']}</th>"
        f"<th class=n>{loc['failures']}</th><th class=n>{loc['rps']:.1f}</th>"
        f"<th class=n>{lat['p50']:.0f}</th><th class=n>{lat['p99']:.0f}</th></tr>"
    )
    head = (
        "<tr><th>method</th><th>endpoint</th><th>requests</th><th>failures</th><th>rps</th>"
        "<th>p50 ms</th><th>p99 ms</th></tr>"
    )
    errors = "".join(
        f"<li>{e['occurrences']}x {escape(e['method'])} {escape(e['name'])}: "
        f"<code>{escape(e['error'])}</code></li>"
        for e in loc["errors"]
    )
    classes = ", ".join(loc["user_classes"])
    procs = f"{loc['workers']} Locust workers" if loc["workers"] else "one Locust process"
    return (
        f'<div class="box"><b>Locust</b> (<code>{escape(Path(loc["locustfile"]).name)}</code>, '
        f"{escape(classes)}; {loc['users']} users, {procs}): "
        f"{loc['new_connections']} new TCP connections for {loc['requests']} requests"
        f"<table>{head}{''.join(rows)}</table>"
        + (f"Failures by error:<ul>{errors}</ul>" if errors else "")
        + "</div>"
    )
