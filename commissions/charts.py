"""Bar charts drawn on the server as inline SVG (Partner Center dashboard). Pure.

No script and no request leaves the page: the markup is the chart. Every text that goes
into it is escaped here, so the result is marked safe. For screen readers the SVG is an
image named by its <title> and described by its <desc>; each bar has its own <title>.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

Number = int | Decimal

# Colours of the series, in order (readable on white, told apart without colour too: the
# legend and every bar's <title> name the series).
PALETTE = ("#2459c7", "#d97706", "#15803d", "#9333ea")
# The drawing's coordinate box; the SVG scales to its container's width.
WIDTH, HEIGHT = 720, 280
LEFT, RIGHT, TOP, BOTTOM = 64, 16, 36, 56
MAX_TICKS = 5
MAX_X_LABELS = 8


@dataclass(frozen=True)
class Series:
    """One named row of values, one per date (the dates of every series are the same)."""

    name: str
    points: Sequence[tuple[date, Number]]


def fill_dates(
    values: Mapping[date, Number], *, start: date, count: int, step: timedelta = timedelta(days=1)
) -> list[tuple[date, Number]]:
    """`count` dates from `start`, `step` apart, each with its value in `values` or 0."""
    dates = [start + step * n for n in range(count)]
    return [(day, values.get(day, 0)) for day in dates]


def nice_scale(top_value: Decimal, *, whole: bool) -> tuple[Decimal, Decimal]:
    """The axis top and tick step for values up to `top_value`: steps of 1, 2 or 5 times a
    power of ten, at most MAX_TICKS of them; whole-number steps for counts."""
    if top_value <= 0:
        return Decimal(1), Decimal(1)
    raw = top_value / MAX_TICKS
    magnitude = Decimal(1).scaleb(raw.adjusted())
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if whole:
        step = max(step, Decimal(1))
    top = (top_value / step).to_integral_value(rounding=ROUND_CEILING) * step
    return _plain(top), _plain(step)


def _plain(value: Decimal) -> Decimal:
    """1.5E+2 -> 150, 1.0 -> 1: a number as people write it."""
    return Decimal(format(value.normalize(), "f"))


def _date_text(day: date) -> str:
    return f"{day:%b} {day.day}"


def bar_chart(
    *,
    chart_id: str,
    title: str,
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    format_value: Callable[[Number], str] = str,
    date_text: Callable[[date], str] = _date_text,
    tick_text: Callable[[Number], str] | None = None,
) -> SafeString:
    """Grouped bars: one group per date, one bar per series; the y axis starts at 0.

    `chart_id` makes the ids of <title> and <desc> unique on the page. `tick_text` writes
    the y axis's ticks (default: `format_value`), e.g. without cents where space is short.
    """
    tick_text = tick_text or format_value
    dates = [day for day, _ in series[0].points] if series else []
    values = [[Decimal(value) for _, value in s.points] for s in series]
    largest = max((v for row in values for v in row), default=Decimal(0))
    whole = all(v == v.to_integral_value() for row in values for v in row)
    top, step = nice_scale(largest, whole=whole)

    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    base_y = TOP + plot_h
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-labelledby="{chart_id}-title {chart_id}-desc">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(_describe(series, dates, x_label, format_value))}'
        "</desc>",
    ]
    # Grid lines and y tick labels.
    tick = Decimal(0)
    while tick <= top:
        y = base_y - float(tick / top) * plot_h
        parts.append(
            f'<line class="chart-grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" '
            f'y2="{y:.1f}" stroke="#dde1e6" stroke-width="1"/>'
        )
        parts.append(
            f'<text class="chart-tick" x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end" '
            f'font-size="11" fill="#616e7c">{escape(tick_text(_tick_value(tick, whole)))}</text>'
        )
        tick += step
    # Bars.
    if dates:
        slot = plot_w / len(dates)
        gap = slot * 0.2
        bar_w = (slot - gap) / len(series)
        for i, day in enumerate(dates):
            for j, s in enumerate(series):
                value = values[j][i]
                if value <= 0:
                    continue
                h = float(value / top) * plot_h
                x = LEFT + i * slot + gap / 2 + j * bar_w
                label = f"{date_text(day)}: {format_value(s.points[i][1])} {s.name}"
                parts.append(
                    f'<rect class="chart-bar chart-series-{j}" x="{x:.1f}" '
                    f'y="{base_y - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                    f'fill="{PALETTE[j % len(PALETTE)]}"><title>{escape(label)}</title></rect>'
                )
        # x tick labels: at most MAX_X_LABELS, always the first date.
        every = -(-len(dates) // MAX_X_LABELS)
        for i in range(0, len(dates), every):
            x = LEFT + (i + 0.5) * slot
            parts.append(
                f'<text class="chart-tick" x="{x:.1f}" y="{base_y + 16}" text-anchor="middle" '
                f'font-size="11" fill="#616e7c">{escape(date_text(dates[i]))}</text>'
            )
    else:
        parts.append(
            f'<text class="chart-empty" x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" '
            f'text-anchor="middle" font-size="13" fill="#616e7c">No data yet</text>'
        )
    # Axes and their labels.
    parts.append(
        f'<line class="chart-axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{base_y}" '
        f'y2="{base_y}" stroke="#616e7c" stroke-width="1"/>'
    )
    parts.append(
        f'<text class="chart-axis-label" x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 12}" '
        f'text-anchor="middle" font-size="12" fill="#1f2933">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text class="chart-axis-label" x="14" y="{TOP + plot_h / 2:.1f}" '
        f'transform="rotate(-90 14 {TOP + plot_h / 2:.1f})" text-anchor="middle" '
        f'font-size="12" fill="#1f2933">{escape(y_label)}</text>'
    )
    # Legend, above the plot.
    x = LEFT
    for j, s in enumerate(series):
        parts.append(
            f'<rect class="chart-legend-key" x="{x}" y="10" width="12" height="12" '
            f'fill="{PALETTE[j % len(PALETTE)]}"/>'
        )
        parts.append(
            f'<text class="chart-legend" x="{x + 18}" y="20" font-size="12" '
            f'fill="#1f2933">{escape(s.name)}</text>'
        )
        x += 18 + 8 * len(s.name) + 24
    parts.append("</svg>")
    return mark_safe("".join(parts))  # every text above is escaped


def _tick_value(tick: Decimal, whole: bool) -> Number:
    return int(tick) if whole else _plain(tick)


def _describe(
    series: Sequence[Series], dates: list[date], x_label: str, format_value: Callable
) -> str:
    if not dates:
        return "No data yet."
    totals = ", ".join(
        f"{s.name} {format_value(sum((v for _, v in s.points), start=0))}" for s in series
    )
    span = f"{dates[0].isoformat()} to {dates[-1].isoformat()}"
    return f"One group of bars per {x_label.lower()}, {span}. Totals: {totals}."
