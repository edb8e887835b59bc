"""Server-rendered SVG charts: no JavaScript, no external file, printable. Each chart is drawn from
the same figures as the table shown with it (the table is what screen readers and CSV exports use).
"""

import math
from dataclasses import dataclass
from decimal import Decimal
from html import escape

from django.utils.safestring import SafeString, mark_safe

WIDTH = 720
HEIGHT = 260
LEFT = 70
RIGHT = 16
TOP = 14
BOTTOM = 34


@dataclass(frozen=True)
class Series:
    name: str
    values: list[Decimal]
    color: str
    kind: str = "bar"  # "bar" | "line"


def _nice_step(span: float, ticks: int = 5) -> float:
    raw = span / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


def compact_number(value: float) -> str:
    """1234567 → 1.2M, 12500 → 12.5k, 950 → 950 (axis labels)."""
    sign = "−" if value < 0 else ""
    value = abs(value)
    for threshold, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if value >= threshold:
            text = f"{value / threshold:.1f}".rstrip("0").rstrip(".")
            return f"{sign}{text}{suffix}"
    return f"{sign}{value:.0f}" if value == int(value) else f"{sign}{value:.2f}"


def chart(
    *, title: str, labels: list[str], series: list[Series], stacked: bool = False, legend: bool = True
) -> SafeString:
    """A bar and/or line chart over `labels` (months or buckets). Bars of several series stand side
    by side, or are stacked (positive values up, negative values down) when `stacked`."""
    bars = [s for s in series if s.kind == "bar"]
    lines = [s for s in series if s.kind == "line"]
    count = max(len(labels), 1)
    highs, lows = [0.0], [0.0]
    if stacked:
        for index in range(len(labels)):
            highs.append(sum(float(s.values[index]) for s in bars if s.values[index] > 0))
            lows.append(sum(float(s.values[index]) for s in bars if s.values[index] < 0))
    else:
        highs.extend(float(v) for s in bars for v in s.values)
        lows.extend(float(v) for s in bars for v in s.values)
    highs.extend(float(v) for s in lines for v in s.values)
    lows.extend(float(v) for s in lines for v in s.values)
    high, low = max(highs), min(lows)
    if high == low:
        high = low + 1
    step = _nice_step(high - low)
    top = math.ceil(high / step) * step
    bottom = math.floor(low / step) * step
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def y(value: float) -> float:
        return TOP + (top - value) / (top - bottom) * plot_h

    slot = plot_w / count
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">',
        f"<title>{escape(title)}</title>",
    ]
    tick = bottom
    while tick <= top + step / 2:
        ty = y(tick)
        stroke = "#9aa4b2" if abs(tick) < step / 1000 else "#e5e8ee"
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{ty:.1f}" y2="{ty:.1f}" stroke="{stroke}"/>')
        parts.append(
            f'<text x="{LEFT - 8}" y="{ty + 4:.1f}" text-anchor="end" class="chart-axis">{compact_number(tick)}</text>'
        )
        tick += step
    every = max(1, math.ceil(count / 12))
    for index, label in enumerate(labels):
        if index % every == 0:
            cx = LEFT + slot * (index + 0.5)
            lines_of_label = "".join(
                f'<tspan x="{cx:.1f}" dy="{0 if number == 0 else 12}">{escape(text)}</tspan>'
                for number, text in enumerate(label.split("\n"))
            )
            parts.append(f'<text y="{HEIGHT - 20}" text-anchor="middle" class="chart-axis">{lines_of_label}</text>')
    group_w = slot * 0.7
    for index in range(len(labels)):
        x0 = LEFT + slot * index + (slot - group_w) / 2
        if stacked:
            up, down = 0.0, 0.0
            for s in bars:
                value = float(s.values[index])
                if value == 0:
                    continue
                base = up if value > 0 else down
                y_from, y_to = y(base), y(base + value)
                parts.append(_rect(x0, min(y_from, y_to), group_w, abs(y_to - y_from), s, labels[index], value))
                if value > 0:
                    up += value
                else:
                    down += value
        else:
            width = group_w / max(len(bars), 1)
            for position, s in enumerate(bars):
                value = float(s.values[index])
                y_from, y_to = y(0), y(value)
                parts.append(
                    _rect(
                        x0 + position * width,
                        min(y_from, y_to),
                        width * 0.92,
                        abs(y_to - y_from),
                        s,
                        labels[index],
                        value,
                    )
                )
    for s in lines:
        points = [(LEFT + slot * (index + 0.5), y(float(value))) for index, value in enumerate(s.values)]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{s.color}" stroke-width="2.5"/>')
        for (px, py), label, value in zip(points, labels, s.values, strict=True):
            parts.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3.5" fill="#fff" stroke="{s.color}" stroke-width="2">'
                f"<title>{escape(s.name)}, {escape(_flat(label))}: {value:,.2f}</title></circle>"
            )
    parts.append("</svg>")
    legend_html = "".join(
        f'<span class="legend-item"><span class="legend-swatch legend-{s.kind}" style="background:{s.color}">'
        f"</span>{escape(s.name)}</span>"
        for s in series
    )
    caption = f'<figcaption class="legend">{legend_html}</figcaption>' if legend else ""
    return mark_safe(f'<figure class="chart-figure">{"".join(parts)}{caption}</figure>')  # noqa: S308 - every text is escaped above


def _flat(label: str) -> str:
    return label.replace("\n", " ")


def _rect(x: float, y: float, width: float, height: float, series: Series, label: str, value: float) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(width, 0):.1f}" height="{max(height, 0.5):.1f}" '
        f'rx="2" fill="{series.color}">'
        f"<title>{escape(series.name)}, {escape(_flat(label))}: {value:,.2f}</title></rect>"
    )


def table(*, caption: str, headers: list[str], rows: list[list[str]]) -> SafeString:
    """The figures behind a chart as an HTML table (the first column names the row)."""
    head = "".join(f'<th scope="col">{escape(header)}</th>' for header in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return mark_safe(  # noqa: S308 - every text is escaped above
        f'<table class="fin-table"><caption class="visually-hidden">{escape(caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
