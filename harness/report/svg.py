"""Hand-rolled inline SVG charts (no JavaScript, nothing fetched). Pure: data in, markup out.

Colours come from CSS classes (``.s-ok``, ``.s-bad``, ...) that the HTML page defines.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

W, H = 560, 220
ML, MR, MT, MB = 64, 14, 26, 40


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1-2-5 steps)."""
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks = []
    t = first
    while t <= hi + step * 1e-9:
        if t >= lo - step * 1e-9:
            ticks.append(round(t, 12))
        t += step
    return ticks


def fmt_num(x: float) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 10_000:
        return f"{x / 1000:g}k"
    if float(x).is_integer():
        return f"{int(x)}"
    return f"{x:.3g}"


@dataclass(frozen=True)
class Frame:
    """Maps data coordinates to the plot area."""

    x0: float
    x1: float
    y0: float
    y1: float
    width: int = W
    height: int = H

    def x(self, v: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return ML + (v - self.x0) / span * (self.width - ML - MR)

    def y(self, v: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.height - MB - (v - self.y0) / span * (self.height - MT - MB)


def _open(title: str, f: Frame, label: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {f.width} '
        f'{f.height}" width="{f.width}" height="{f.height}" role="img" '
        f'aria-label="{escape(label)}">',
        f"<title>{escape(label)}</title>",
        f'<text class="ttl" x="{ML}" y="16">{escape(title)}</text>',
    ]


def _axes(
    f: Frame,
    x_label: str,
    y_label: str,
    y_fmt: Callable[[float], str] = fmt_num,
    x_ticks: Sequence[float] | None = None,
) -> list[str]:
    out = []
    for t in nice_ticks(f.y0, f.y1):
        y = f.y(t)
        out.append(f'<line class="grid" x1="{ML}" x2="{f.width - MR}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="tick" x="{ML - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end">{escape(y_fmt(t))}</text>'
        )
    for t in x_ticks if x_ticks is not None else nice_ticks(f.x0, f.x1, 6):
        x = f.x(t)
        out.append(
            f'<text class="tick" x="{x:.1f}" y="{f.height - MB + 14}" '
            f'text-anchor="middle">{escape(fmt_num(t))}</text>'
        )
    out.append(
        f'<line class="axis" x1="{ML}" x2="{f.width - MR}" y1="{f.height - MB}" '
        f'y2="{f.height - MB}"/>'
    )
    out.append(f'<line class="axis" x1="{ML}" x2="{ML}" y1="{MT}" y2="{f.height - MB}"/>')
    out.append(
        f'<text class="lbl" x="{(ML + f.width - MR) / 2}" y="{f.height - 6}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    out.append(
        f'<text class="lbl" transform="translate(14 {(MT + f.height - MB) / 2}) '
        f'rotate(-90)" text-anchor="middle">{escape(y_label)}</text>'
    )
    return out


def _legend(f: Frame, items: Sequence[tuple[str, str]]) -> list[str]:
    out, x = [], f.width - MR
    for label, cls in reversed(items):
        x -= 7 * len(label) + 22
        out.append(f'<rect class="{cls}" x="{x}" y="7" width="10" height="10"/>')
        out.append(f'<text class="tick" x="{x + 14}" y="16">{escape(label)}</text>')
    return out


def conntrack_chart(
    title: str,
    timeline: Sequence[Sequence[float]],
    limit: int,
    threshold: float = 0.9,
) -> str:
    """Entries over time against ``max`` (and the alert threshold), drops marked in red.

    A sample is marked as dropping when the row's third column (drop counter so far) rose
    since the previous sample; rows without it mark samples where the table was full.
    """
    xs = [float(r[0]) for r in timeline] or [0.0]
    ys = [float(r[1]) for r in timeline] or [0.0]
    top = max(limit, *ys) * 1.08
    f = Frame(min(0.0, xs[0]), max(xs[-1], 1.0), 0.0, top)
    out = _open(title, f, f"{title}: conntrack entries over time, max {limit}")
    out += _axes(f, "time in phase (s)", "entries")
    pts = " ".join(f"{f.x(x):.1f},{f.y(y):.1f}" for x, y in zip(xs, ys, strict=True))
    area = f"{f.x(xs[0]):.1f},{f.y(0):.1f} {pts} {f.x(xs[-1]):.1f},{f.y(0):.1f}"
    out.append(f'<polygon class="area" points="{area}"/>')
    out.append(f'<polyline class="s-line" points="{pts}"/>')
    for level, cls, text in (
        (limit, "max", f"nf_conntrack_max {limit}"),
        (limit * threshold, "thr", f"alert {threshold:.0%}"),
    ):
        y = f.y(level)
        out.append(f'<line class="{cls}" x1="{ML}" x2="{f.width - MR}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="tick {cls}-t" x="{f.width - MR - 4}" y="{y - 4:.1f}" '
            f'text-anchor="end">{escape(text)}</text>'
        )
    marks = 0
    prev_drop = 0.0
    for r in timeline:
        dropping = (len(r) > 2 and r[2] > prev_drop) or (len(r) <= 2 and r[1] >= limit)
        if len(r) > 2:
            prev_drop = r[2]
        if dropping:
            marks += 1
            out.append(
                f'<circle class="drop" cx="{f.x(r[0]):.1f}" cy="{f.y(r[1]):.1f}" r="3">'
                f"<title>t={fmt_num(r[0])}s: dropping</title></circle>"
            )
    out += _legend(f, [("entries", "s-ent"), (f"drops ({marks} samples)", "s-bad")])
    out.append("</svg>")
    return "\n".join(out)


def outcomes_chart(title: str, timeline: Sequence[Sequence[float]]) -> str:
    """Lookups per second, stacked: answered in time (green) and timed out (red)."""
    rows = [(float(r[0]), float(r[1]), float(r[2])) for r in timeline] or [(1.0, 0.0, 0.0)]
    t_max = max(r[0] for r in rows)
    f = Frame(0.0, max(t_max, 1.0), 0.0, max(max(r[1] for r in rows) * 1.15, 1.0))
    out = _open(title, f, f"{title}: DNS lookup outcomes per second")
    out += _axes(f, "time in phase (s)", "lookups / s")
    bw = max(1.0, (f.x(1.0) - f.x(0.0)) * 0.8)
    for t, n, bad in rows:
        ok = max(0.0, n - bad)
        x = f.x(t) - bw
        out.append(
            f'<rect class="s-okf" x="{x:.1f}" y="{f.y(ok):.1f}" width="{bw:.1f}" '
            f'height="{f.y(0) - f.y(ok):.1f}"><title>t={fmt_num(t)}s: {int(ok)} ok'
            f"</title></rect>"
        )
        if bad:
            out.append(
                f'<rect class="s-bad" x="{x:.1f}" y="{f.y(n):.1f}" width="{bw:.1f}" '
                f'height="{f.y(ok) - f.y(n):.1f}"><title>t={fmt_num(t)}s: {int(bad)} '
                f"timed out</title></rect>"
            )
    out += _legend(f, [("answered", "s-okf"), ("timed out", "s-bad")])
    out.append("</svg>")
    return "\n".join(out)


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    classes: Sequence[str],
    *,
    y_label: str,
    errors: Sequence[tuple[float, float]] | None = None,
    y_fmt: Callable[[float], str] = fmt_num,
    value_fmt: Callable[[float], str] = fmt_num,
    width: int = W,
) -> str:
    """Vertical bars with optional [low, high] error whiskers."""
    tops = [*values, *(hi for _, hi in errors or [])]
    f = Frame(0.0, float(len(values)), 0.0, max(max(tops, default=0.0) * 1.15, 1e-9), width=width)
    out = _open(
        title,
        f,
        f"{title}: "
        + ", ".join(f"{lab} {value_fmt(v)}" for lab, v in zip(labels, values, strict=True)),
    )
    out += _axes(f, "", y_label, y_fmt, x_ticks=[])
    slot = f.x(1.0) - f.x(0.0)
    bw = slot * 0.6
    for i, (lab, v, cls) in enumerate(zip(labels, values, classes, strict=True)):
        x = f.x(i) + (slot - bw) / 2
        y = f.y(v)
        h = max(f.y(0) - y, 0.0)
        out.append(
            f'<rect class="{cls}" x="{x:.1f}" y="{y:.1f}" width="{bw:.1f}" '
            f'height="{h:.1f}"><title>{escape(lab)}: {escape(value_fmt(v))}</title></rect>'
        )
        if errors:
            lo, hi = errors[i]
            cx = x + bw / 2
            out.append(
                f'<path class="err" d="M{cx:.1f},{f.y(lo):.1f}V{f.y(hi):.1f}'
                f'M{cx - 5:.1f},{f.y(hi):.1f}h10M{cx - 5:.1f},{f.y(lo):.1f}h10"/>'
            )
        top = f.y(errors[i][1]) if errors else y
        out.append(
            f'<text class="val" x="{x + bw / 2:.1f}" y="{top - 5:.1f}" '
            f'text-anchor="middle">{escape(value_fmt(v))}</text>'
        )
        out.append(
            f'<text class="tick" x="{x + bw / 2:.1f}" y="{f.height - MB + 14}" '
            f'text-anchor="middle">{escape(lab)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out)
