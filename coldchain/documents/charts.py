"""Temperature charts as self-contained SVG: vector in the PDF, inline in the portal's pages.

A chart draws what :class:`coldchain.domain.investigation.Chart` holds: per bucket the readings' range (a band
from min to max) and mean (a line), each limit as a labelled horizontal line, and each excursion span hatched and
marked. Nothing is interpolated: the band and the line break where a bucket has no readings (a gap is shown, not
bridged; REFERENCE §1). Nothing is told by colour alone: limits carry their label and threshold, excursions a
hatch and a marker, and a legend names every mark.

The SVG has no script and no ``style`` attribute or element (pages send a Content-Security-Policy without inline
styles): only presentation attributes. It carries ``role="img"`` with a ``<title>`` and a ``<desc>`` that tell the
chart in words. Its size grows with the points (about 40 bytes each) and nothing else.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from html import escape

from coldchain.documents.wording import condition, duration, utc
from coldchain.domain.investigation import Chart, ChartLimit, ChartPoint

__all__ = ["temperature_svg"]

_FONT = "DejaVu Sans, sans-serif"
_FONT_PX = 10.5
_CHAR_PX = 6.1  # the average advance of DejaVu Sans at _FONT_PX, for placing labels without measuring text
_LEFT, _RIGHT, _TOP, _BOTTOM = 50.0, 10.0, 18.0, 52.0
_INK, _MUTED, _GRID, _FRAME = "#1b1f23", "#57606a", "#e6e9ec", "#afb8c1"
_BAND, _MEAN = "#9ecae1", "#08519c"
_ABOVE, _BELOW, _RANGE = "#b3261e", "#0b5cad", "#57606a"
_EXCURSION, _EXCURSION_FILL = "#c55a00", "#fde7d0"
#: Time-axis steps (seconds) a reader counts in.
_TIME_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 1209600)
_VALUE_STEPS = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
#: Excursion spans listed by name in the chart's description; more are counted.
_DESCRIBED = 10


def temperature_svg(chart: Chart, *, width: int, height: int, tz_label: str = "UTC", ident: str | None = None) -> str:
    """The chart as an SVG element of ``width`` × ``height`` pixels (a ``viewBox`` of the same size, so it scales).

    Times on the axis are UTC; ``tz_label`` is the zone's name as the axis shows it. ``ident`` prefixes the ids
    inside the SVG (its title, description and hatch), which must be unique on a page that shows several
    charts; by default it is derived from the chart.
    """
    prefix = escape(ident or "chart-" + _digest(chart))
    plot = _Plot(chart, width=float(width), height=float(height))
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        f' role="img" aria-labelledby="{prefix}-title {prefix}-desc" font-family="{_FONT}"'
        f' font-size="{_FONT_PX}" class="temperature-chart">',
        f'<title id="{prefix}-title">{escape(_title(chart))}</title>',
        f'<desc id="{prefix}-desc">{escape(_description(chart))}</desc>',
        f'<defs><pattern id="{prefix}-hatch" width="6" height="6" patternUnits="userSpaceOnUse"'
        f' patternTransform="rotate(45)"><rect width="6" height="6" fill="{_EXCURSION_FILL}"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="{_EXCURSION}" stroke-width="1.6"/></pattern></defs>',
        f'<rect x="{plot.left:.1f}" y="{plot.top:.1f}" width="{plot.width:.1f}" height="{plot.height:.1f}"'
        f' fill="#ffffff" stroke="{_FRAME}"/>',
    ]
    parts += _value_axis(plot)
    parts += _excursions(chart, plot, prefix)
    parts += _time_axis(plot)
    if chart.points:
        parts += _readings(chart, plot)
    else:
        parts.append(
            f'<text x="{plot.left + plot.width / 2:.1f}" y="{plot.top + plot.height / 2:.1f}" text-anchor="middle"'
            f' font-size="14" fill="{_MUTED}" class="no-readings">no readings in this period</text>'
        )
    parts += _limits(chart.limits, plot)
    parts += _legend(chart, plot, prefix, tz_label)
    parts.append("</svg>")
    return "".join(parts)


class _Plot:
    """Where the plot area lies and how times and temperatures map onto it."""

    def __init__(self, chart: Chart, *, width: float, height: float) -> None:
        self.width = max(width - _LEFT - _RIGHT, 10.0)
        self.height = max(height - _TOP - _BOTTOM, 10.0)
        self.left, self.top = _LEFT, _TOP
        self.right, self.bottom = _LEFT + self.width, _TOP + self.height
        self.start_s = chart.start.timestamp()
        self.span_s = max(chart.end.timestamp() - self.start_s, 1.0)
        self.low_c, self.high_c, self.step_c = _value_range(chart, self.height)

    def x(self, moment: datetime | float) -> float:
        seconds = moment if isinstance(moment, float) else moment.timestamp()
        return self.left + (seconds - self.start_s) / self.span_s * self.width

    def y(self, value_c: float) -> float:
        return self.bottom - (value_c - self.low_c) / (self.high_c - self.low_c) * self.height


def _digest(chart: Chart) -> str:
    key = f"{chart.start.isoformat()}|{chart.end.isoformat()}|{chart.bucket_s}|{len(chart.points)}|{chart.shaded}"
    return hashlib.sha256(key.encode()).hexdigest()[:10]


def _value_range(chart: Chart, plot_height: float) -> tuple[float, float, float]:
    """The temperatures the plot covers: every reading's range and every limit, with a margin, on round ticks."""
    values = [value for point in chart.points for value in (point.min_c, point.max_c)]
    values += [limit.threshold_c for limit in chart.limits]
    low, high = (min(values), max(values)) if values else (0.0, 10.0)
    if high - low < 2.0:
        middle = (high + low) / 2
        low, high = middle - 1.0, middle + 1.0
    margin = (high - low) * 0.08
    low, high = low - margin, high + margin
    target = max(3, int(plot_height // 32))
    step = next((s for s in _VALUE_STEPS if (high - low) / s <= target), _VALUE_STEPS[-1])
    while (high - low) / step > target:
        step *= 2
    return math.floor(low / step) * step, math.ceil(high / step) * step, step


def _value_axis(plot: _Plot) -> list[str]:
    parts = ['<g class="value-axis">']
    count = round((plot.high_c - plot.low_c) / plot.step_c)
    for index in range(count + 1):
        value = plot.low_c + index * plot.step_c
        y = plot.y(value)
        if 0 < index < count:
            parts.append(
                f'<line x1="{plot.left:.1f}" y1="{y:.1f}" x2="{plot.right:.1f}" y2="{y:.1f}" stroke="{_GRID}"/>'
            )
        parts.append(
            f'<text x="{plot.left - 5:.1f}" y="{y + 3.5:.1f}" text-anchor="end" fill="{_INK}">'
            f"{_celsius_tick(value, plot.step_c)}</text>"
        )
    parts.append("</g>")
    return parts


def _celsius_tick(value: float, step: float) -> str:
    digits = 0 if step >= 1 else 1
    text = f"{value:.{digits}f}"
    return f"{'0' if text in ('-0', '-0.0') else text} °C"


def _time_ticks(start_s: float, end_s: float, plot_width: float) -> tuple[int, list[float]]:
    target = max(2, int(plot_width // 85))
    span = end_s - start_s
    step = next((s for s in _TIME_STEPS if span / s <= target), None)
    if step is None:
        step = 86400 * max(1, math.ceil(span / target / 86400))
    first = math.ceil(start_s / step) * step if step < 86400 else math.ceil(start_s / 86400) * 86400
    ticks: list[float] = []
    moment = float(first)
    while moment <= end_s + 1e-6:
        ticks.append(moment)
        moment += step
    return step, ticks


def _day(moment: datetime) -> str:
    return f"{moment.day} {_MONTHS[moment.month - 1]}"


def _time_axis(plot: _Plot) -> list[str]:
    """Ticks at round UTC times: hours with the date where the day changes, or days with the year."""
    step, ticks = _time_ticks(plot.start_s, plot.start_s + plot.span_s, plot.width)
    parts = ['<g class="time-axis">']
    previous: datetime | None = None
    for tick_s in ticks:
        moment = datetime.fromtimestamp(tick_s, UTC)
        x = plot.x(tick_s)
        parts.append(
            f'<line x1="{x:.1f}" y1="{plot.bottom:.1f}" x2="{x:.1f}" y2="{plot.bottom + 4:.1f}" stroke="{_MUTED}"/>'
        )
        if step < 86400:
            first_line = moment.strftime("%H:%M")
            second_line = _day(moment) if previous is None or previous.date() != moment.date() else ""
        else:
            first_line = _day(moment)
            second_line = str(moment.year) if previous is None or previous.year != moment.year else ""
        anchor = "start" if x - plot.left < 16 else "end" if plot.right - x < 16 else "middle"
        parts.append(
            f'<text x="{x:.1f}" y="{plot.bottom + 15:.1f}" text-anchor="{anchor}" fill="{_INK}">{first_line}</text>'
        )
        if second_line:
            parts.append(
                f'<text x="{x:.1f}" y="{plot.bottom + 27:.1f}" text-anchor="{anchor}" fill="{_MUTED}">'
                f"{second_line}</text>"
            )
        previous = moment
    parts.append("</g>")
    return parts


def _segments(chart: Chart) -> list[list[ChartPoint]]:
    """Runs of points to draw joined. A silence longer than twice the usual spacing of the points (or of the
    buckets, when they are coarser than the logging) breaks the run: the band and the line never bridge a gap,
    while one missed reading, which the evaluation tolerates too, does not break them."""
    points = sorted(chart.points, key=lambda p: p.at)
    steps = sorted((b.at - a.at).total_seconds() for a, b in itertools.pairwise(points))
    usual_s = max(float(chart.bucket_s), steps[len(steps) // 2] if steps else 0.0)
    longest = timedelta(seconds=2 * usual_s)
    runs: list[list[ChartPoint]] = []
    for point in points:
        if runs and point.at - runs[-1][-1].at <= longest:
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs


def _readings(chart: Chart, plot: _Plot) -> list[str]:
    half = chart.bucket_s / 2
    band: list[str] = ['<g class="range" fill="' + _BAND + '" fill-opacity="0.75">']
    line: list[str] = []
    singles: list[str] = []
    for run in _segments(chart):
        xs = [plot.x(min(max(p.at.timestamp() + half, plot.start_s), plot.start_s + plot.span_s)) for p in run]
        if len(run) == 1:
            x, point = xs[0], run[0]
            band.append(
                f'<rect x="{x - 1.5:.1f}" y="{plot.y(point.max_c):.1f}" width="3"'
                f' height="{max(plot.y(point.min_c) - plot.y(point.max_c), 0.8):.1f}"/>'
            )
            singles.append(f'<circle cx="{x:.1f}" cy="{plot.y(point.mean_c):.1f}" r="1.8"/>')
            continue
        upper = " ".join(f"{x:.1f},{plot.y(p.max_c):.1f}" for x, p in zip(xs, run, strict=True))
        lower = " ".join(f"{x:.1f},{plot.y(p.min_c):.1f}" for x, p in reversed(list(zip(xs, run, strict=True))))
        band.append(f'<polygon points="{upper} {lower}"/>')
        line.append("M" + "L".join(f"{x:.1f} {plot.y(p.mean_c):.1f}" for x, p in zip(xs, run, strict=True)))
    band.append("</g>")
    parts = band
    if line:
        parts.append(
            f'<path class="mean" d="{"".join(line)}" fill="none" stroke="{_MEAN}" stroke-width="1.4"'
            ' stroke-linejoin="round"/>'
        )
    if singles:
        parts.append(f'<g class="mean" fill="{_MEAN}">{"".join(singles)}</g>')
    return parts


def _excursions(chart: Chart, plot: _Plot, prefix: str) -> list[str]:
    parts: list[str] = []
    end_s = plot.start_s + plot.span_s
    for start, end in chart.shaded:
        x0 = plot.x(max(start.timestamp(), plot.start_s))
        x1 = plot.x(min(end.timestamp(), end_s))
        if x1 - x0 < 2.0:  # a short excursion on a long chart still shows
            middle = (x0 + x1) / 2
            x0, x1 = middle - 1.0, middle + 1.0
        parts.append(
            f'<rect class="excursion" x="{x0:.1f}" y="{plot.top:.1f}" width="{x1 - x0:.1f}" height="{plot.height:.1f}"'
            f' fill="url(#{prefix}-hatch)" fill-opacity="0.85"><title>excursion {escape(utc(start))} to'
            f" {escape(utc(end))}</title></rect>"
        )
        middle = (x0 + x1) / 2
        parts.append(
            f'<path class="excursion-mark" d="M{middle - 4:.1f} {plot.top - 8:.1f}L{middle + 4:.1f} {plot.top - 8:.1f}'
            f'L{middle:.1f} {plot.top - 1:.1f}Z" fill="{_EXCURSION}"/>'
        )
        if x1 - x0 >= 64:
            parts.append(
                f'<text x="{middle:.1f}" y="{plot.top + 12:.1f}" text-anchor="middle" fill="{_EXCURSION}"'
                ' font-weight="bold">excursion</text>'
            )
    return parts


def _limit_text(limit: ChartLimit) -> str:
    if limit.inclusive is None:
        return f"{limit.label}: {limit.threshold_c:g} °C"
    return f"{limit.label} {condition(limit.direction, limit.threshold_c, limit.inclusive)}"


def _limits(limits: Sequence[ChartLimit], plot: _Plot) -> list[str]:
    """Each limit as a line across the plot, labelled at its right end: above the line for an upper limit, below
    it for a lower one. Limits on the same line share one label; labels that would overlap are moved apart."""
    lines: dict[tuple[float, str], list[ChartLimit]] = {}
    for limit in limits:
        lines.setdefault((round(plot.y(limit.threshold_c)), limit.direction), []).append(limit)
    placed: list[tuple[float, float, list[ChartLimit]]] = []
    for (_, direction), group in lines.items():
        y = plot.y(group[0].threshold_c)
        placed.append((y - 3.5 if direction == "above" else y + _FONT_PX + 1, y, group))
    placed.sort(key=lambda item: item[0])
    lines_drawn: list[str] = ['<g class="limits">']
    labels: list[str] = []
    previous: float | None = None
    for text_y, y, group in placed:
        if previous is not None and text_y - previous < _FONT_PX + 2:
            text_y = previous + _FONT_PX + 2
        text_y = min(max(text_y, plot.top + _FONT_PX), plot.bottom - 2)
        previous = text_y
        for limit in group:
            colour, dashes = _limit_style(limit)
            lines_drawn.append(
                f'<line class="limit" x1="{plot.left:.1f}" y1="{y:.1f}" x2="{plot.right:.1f}" y2="{y:.1f}"'
                f' stroke="{colour}" stroke-width="1.3" stroke-dasharray="{dashes}"/>'
            )
        text = " · ".join(_limit_text(limit) for limit in group)
        label_width = len(text) * _CHAR_PX + 6
        labels.append(
            f'<rect x="{plot.right - 4 - label_width:.1f}" y="{text_y - _FONT_PX + 1:.1f}" width="{label_width:.1f}"'
            f' height="{_FONT_PX + 2:.1f}" fill="#ffffff" fill-opacity="0.9"/>'
            f'<text class="limit-label" x="{plot.right - 7:.1f}" y="{text_y:.1f}" text-anchor="end"'
            f' fill="{_limit_style(group[0])[0]}">{escape(text)}</text>'
        )
    # labels over every line, so no line crosses a label
    return [*lines_drawn, "</g>", '<g class="limit-labels">', *labels, "</g>"]


def _limit_style(limit: ChartLimit) -> tuple[str, str]:
    """Colour and dashes: a rule's upper limit red, its lower limit blue, both dashed; a label range's bound grey
    and dotted."""
    if limit.inclusive is None:
        return _RANGE, "2 3"
    return (_ABOVE if limit.direction == "above" else _BELOW), "7 3"


def _legend(chart: Chart, plot: _Plot, prefix: str, tz_label: str) -> list[str]:
    y = plot.bottom + 44
    x = plot.left
    parts = ['<g class="legend">']

    def label(text: str) -> None:
        nonlocal x
        parts.append(f'<text x="{x:.1f}" y="{y:.1f}" fill="{_INK}">{escape(text)}</text>')
        x += len(text) * _CHAR_PX + 16

    parts.append(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="16" height="10" fill="{_BAND}"/>')
    x += 21
    label(f"min–max per {duration(chart.bucket_s / 60)}")
    parts.append(f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + 16:.1f}" y2="{y - 4:.1f}" stroke="{_MEAN}"'
                 ' stroke-width="1.6"/>')  # fmt: skip
    x += 21
    label("mean")
    parts.append(
        f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="16" height="10" fill="url(#{prefix}-hatch)" stroke="{_EXCURSION}"'
        ' stroke-width="0.6"/>'
    )
    x += 21
    label("excursion")
    parts.append(f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + 16:.1f}" y2="{y - 4:.1f}" stroke="{_ABOVE}"'
                 ' stroke-width="1.3" stroke-dasharray="7 3"/>')  # fmt: skip
    x += 21
    label("limit (labelled)")
    parts.append(
        f'<text x="{plot.right:.1f}" y="{y:.1f}" text-anchor="end" fill="{_MUTED}">time in {escape(tz_label)}</text>'
    )
    parts.append("</g>")
    return parts


def _title(chart: Chart) -> str:
    period = f"{utc(chart.start)} to {utc(chart.end)}"
    if not chart.points:
        return f"Temperature, {period}: no readings"
    return f"Temperature, {period}"


def _description(chart: Chart) -> str:
    sentences: list[str] = []
    if chart.points:
        readings = sum(point.readings for point in chart.points)
        low = min(point.min_c for point in chart.points)
        high = max(point.max_c for point in chart.points)
        sentences.append(
            f"{readings} readings in {len(chart.points)} buckets of {duration(chart.bucket_s / 60)};"
            f" lowest {low:.1f} °C, highest {high:.1f} °C."
        )
    else:
        sentences.append("No readings in this period.")
    if chart.limits:
        sentences.append("Limits: " + "; ".join(_limit_text(limit) for limit in chart.limits) + ".")
    if chart.shaded:
        spans = [f"{utc(start)} to {utc(end)}" for start, end in chart.shaded[:_DESCRIBED]]
        more = len(chart.shaded) - _DESCRIBED
        listed = "; ".join(spans) + (f"; and {more} more" if more > 0 else "")
        sentences.append(f"{len(chart.shaded)} excursion span(s) shaded: {listed}.")
    else:
        sentences.append("No excursion in this period.")
    return " ".join(sentences)
