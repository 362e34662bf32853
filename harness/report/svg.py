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
    top: int = MT  # room above the plot: the title's lines and the legend

    def x(self, v: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return ML + (v - self.x0) / span * (self.width - ML - MR)

    def y(self, v: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.height - MB - (v - self.y0) / span * (self.height - self.top - MB)


# Bold 12 px system-ui: about 7 px a character, wide letters included.
TITLE_CHAR_PX = 7.2
LINE_PX = 15


def wrap_title(title: str, width: int, reserve: int = 0) -> list[str]:
    """The title in lines that fit the chart (the first line leaves ``reserve`` px for the
    legend). Words are never cut; a word longer than a line gets a line of its own."""
    lines: list[str] = []
    line = ""
    for word in title.split(" "):
        room = width - ML - MR - (reserve if not lines else 0)
        cand = f"{line} {word}" if line else word
        if line and len(cand) * TITLE_CHAR_PX > room:
            lines.append(line)
            line = word
        else:
            line = cand
    lines.append(line)
    return lines


def title_frame(
    title: str, x0: float, x1: float, y0: float, y1: float, *, width: int = W, reserve: int = 0
) -> tuple[Frame, list[str]]:
    """A frame whose top margin holds the whole (wrapped) title, and the title's lines."""
    lines = wrap_title(title, width, reserve)
    extra = LINE_PX * (len(lines) - 1)
    return Frame(x0, x1, y0, y1, width=width, height=H + extra, top=MT + extra), lines


def _open(lines: Sequence[str], f: Frame, label: str) -> list[str]:
    spans = "".join(
        f'<tspan x="{ML}" dy="{0 if i == 0 else LINE_PX}">{escape(line)}</tspan>'
        for i, line in enumerate(lines)
    )
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {f.width} '
        f'{f.height}" width="{f.width}" height="{f.height}" role="img" '
        f'aria-label="{escape(label)}">',
        f"<title>{escape(label)}</title>",
        f'<text class="ttl" x="{ML}" y="16">{spans}</text>',
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
    out.append(f'<line class="axis" x1="{ML}" x2="{ML}" y1="{f.top}" y2="{f.height - MB}"/>')
    out.append(
        f'<text class="lbl" x="{(ML + f.width - MR) / 2}" y="{f.height - 6}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    out.append(
        f'<text class="lbl" transform="translate(14 {(f.top + f.height - MB) / 2}) '
        f'rotate(-90)" text-anchor="middle">{escape(y_label)}</text>'
    )
    return out


def legend_width(items: Sequence[tuple[str, str]]) -> int:
    return sum(6 * len(label) + 22 for label, _ in items)


def _legend(f: Frame, items: Sequence[tuple[str, str]]) -> list[str]:
    out, x = [], f.width - MR
    for label, cls in reversed(items):
        x -= 6 * len(label) + 22
        out.append(f'<rect class="{cls}" x="{x}" y="7" width="10" height="10"/>')
        out.append(f'<text class="tick" x="{x + 14}" y="16">{escape(label)}</text>')
    return out


# A peak below this share of nf_conntrack_max is drawn on its own scale.
OFF_SCALE = 0.25


def _drop_marks(timeline: Sequence[Sequence[float]], limit: int) -> list[tuple[float, float]]:
    """Samples where the drop counter (third column) rose; without it, where the table was full."""
    marks, prev_drop = [], 0.0
    for r in timeline:
        dropping = (len(r) > 2 and r[2] > prev_drop) or (len(r) <= 2 and r[1] >= limit)
        if len(r) > 2:
            prev_drop = r[2]
        if dropping:
            marks.append((float(r[0]), float(r[1])))
    return marks


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
    peak = max(ys)
    # A table far larger than its use would flatten the line at the bottom: scale to the
    # phase's own peak then, and say where the limit is.
    limit_shown = peak >= OFF_SCALE * limit
    top = (max(limit, peak) if limit_shown else max(peak, 1.0)) * 1.08
    marks = _drop_marks(timeline, limit)
    legend = [("entries", "s-ent"), (f"drops ({len(marks)} samples)", "s-bad")]
    f, lines = title_frame(
        title, min(0.0, xs[0]), max(xs[-1], 1.0), 0.0, top, reserve=legend_width(legend)
    )
    out = _open(lines, f, f"{title}: conntrack entries over time, peak {peak:g} of max {limit}")
    x_label = "time in phase (s)"
    if not limit_shown:  # the limit is off the chart: name it under the axis
        x_label += f"; nf_conntrack_max {limit} is far above (peak {peak / limit:.1%})"
    out += _axes(f, x_label, "entries")
    pts = " ".join(f"{f.x(x):.1f},{f.y(y):.1f}" for x, y in zip(xs, ys, strict=True))
    area = f"{f.x(xs[0]):.1f},{f.y(0):.1f} {pts} {f.x(xs[-1]):.1f},{f.y(0):.1f}"
    out.append(f'<polygon class="area" points="{area}"/>')
    out.append(f'<polyline class="s-line" points="{pts}"/>')
    if limit_shown:
        # labels at the left, where a filling table's line is still low and no drop marks
        # are: the limit's above its line, the alert's below its own (they are close)
        for level, cls, text, dy in (
            (limit, "max", f"nf_conntrack_max {limit}", -4),
            (limit * threshold, "thr", f"alert {threshold:.0%}", 11),
        ):
            y = f.y(level)
            out.append(
                f'<line class="{cls}" x1="{ML}" x2="{f.width - MR}" y1="{y:.1f}" y2="{y:.1f}"/>'
            )
            out.append(
                f'<text class="tick {cls}-t" x="{ML + 4}" y="{y + dy:.1f}" '
                f'text-anchor="start">{escape(text)}</text>'
            )
    for t, count in marks:
        out.append(
            f'<circle class="drop" cx="{f.x(t):.1f}" cy="{f.y(count):.1f}" r="3">'
            f"<title>t={fmt_num(t)}s: dropping</title></circle>"
        )
    out += _legend(f, legend)
    out.append("</svg>")
    return "\n".join(out)


def outcomes_chart(title: str, timeline: Sequence[Sequence[float]]) -> str:
    """Lookups per second, stacked: answered in time (green) and timed out (red)."""
    rows = [(float(r[0]), float(r[1]), float(r[2])) for r in timeline] or [(0.0, 0.0, 0.0)]
    # row t counts the lookups started in second [t, t+1): its bar spans that second
    t_end = max(r[0] for r in rows) + 1.0
    legend = [("answered", "s-okf"), ("timed out", "s-bad")]
    f, lines = title_frame(
        title,
        min(0.0, rows[0][0]),
        t_end,
        0.0,
        max(max(r[1] for r in rows) * 1.15, 1.0),
        reserve=legend_width(legend),
    )
    out = _open(lines, f, f"{title}: DNS lookup outcomes per second")
    out += _axes(f, "time in phase (s)", "lookups / s")
    slot = f.x(1.0) - f.x(0.0)
    bw = max(1.0, slot * 0.8)
    for t, n, bad in rows:
        ok = max(0.0, n - bad)
        x = f.x(t) + (slot - bw) / 2
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
    out += _legend(f, legend)
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
    f, lines = title_frame(
        title, 0.0, float(len(values)), 0.0, max(max(tops, default=0.0) * 1.15, 1e-9), width=width
    )
    out = _open(
        lines,
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
