"""The temperature chart as SVG: valid, self-contained, told in words as well as drawn, and small."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from coldchain.documents.charts import temperature_svg
from coldchain.domain.investigation import Chart, ChartLimit, ChartPoint
from tests.documents.factories import investigation

SVG = "{http://www.w3.org/2000/svg}"
START = datetime(2026, 11, 24, 6, 0, tzinfo=UTC)


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def by_class(root: ET.Element, tag: str, name: str) -> list[ET.Element]:
    return [element for element in root.iter(f"{SVG}{tag}") if element.get("class") == name]


def points(count: int, *, bucket_s: int = 600, start: datetime = START, base_c: float = 5.0) -> list[ChartPoint]:
    return [
        ChartPoint(
            at=start + timedelta(seconds=index * bucket_s),
            min_c=base_c - 0.5 + (index % 7) * 0.1,
            mean_c=base_c + (index % 5) * 0.1,
            max_c=base_c + 0.5 + (index % 3) * 0.1,
            readings=10,
        )
        for index in range(count)
    ]


def chart(**fields: object) -> Chart:
    values: dict[str, object] = {
        "start": START,
        "end": START + timedelta(days=1),
        "bucket_s": 600,
        "points": points(144),
        "limits": [
            ChartLimit(label="heat", threshold_c=8.0, direction="above", inclusive=False),
            ChartLimit(label="freeze", threshold_c=0.0, direction="below", inclusive=True),
        ],
        "shaded": [],
    }
    values.update(fields)
    return Chart(**values)  # type: ignore[arg-type]


def test_the_shipment_chart_is_valid_svg_with_one_hatched_span_per_excursion_and_a_labelled_line_per_limit() -> None:
    shipment = investigation().chart
    assert shipment.shaded and shipment.limits

    root = parse(temperature_svg(shipment, width=680, height=270))

    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    spans = by_class(root, "rect", "excursion")
    assert len(spans) == len(shipment.shaded)
    assert all(span.get("fill", "").startswith("url(#") for span in spans)  # hatched, not a colour alone
    assert len(by_class(root, "path", "excursion-mark")) == len(shipment.shaded)
    assert len(by_class(root, "line", "limit")) == len(shipment.limits)
    labels = " ".join(text.text or "" for text in by_class(root, "text", "limit-label"))
    assert "heat > 8 °C" in labels
    assert "freeze ≤ 0 °C" in labels
    assert "extreme heat > 25 °C" in labels
    assert "label range: 2 °C" in labels


def test_the_chart_tells_itself_in_words_with_its_period_in_utc() -> None:
    one_excursion = (START + timedelta(hours=5), START + timedelta(hours=7, minutes=10))

    root = parse(temperature_svg(chart(shaded=[one_excursion]), width=680, height=270, ident="overview"))

    title = root.find(f"{SVG}title")
    desc = root.find(f"{SVG}desc")
    assert title is not None and desc is not None
    assert root.get("aria-labelledby") == "overview-title overview-desc"
    assert title.get("id") == "overview-title"
    assert title.text == "Temperature, 2026-11-24 06:00 UTC to 2026-11-25 06:00 UTC"
    assert desc.text is not None
    assert "1440 readings in 144 buckets of 10 min" in desc.text
    assert "Limits: heat > 8 °C; freeze ≤ 0 °C." in desc.text
    assert "1 excursion span(s) shaded: 2026-11-24 11:00 UTC to 2026-11-24 13:10 UTC." in desc.text
    texts = [text.text for text in root.iter(f"{SVG}text")]
    assert "time in UTC" in texts
    assert "12:00" in texts and "25 Nov" in texts  # hours, and the date where the day changes


def test_the_chart_has_no_script_no_style_and_names_its_own_font() -> None:
    svg = temperature_svg(investigation().chart, width=680, height=270)

    assert "<script" not in svg
    assert "style=" not in svg
    assert "<style" not in svg
    assert 'font-family="DejaVu Sans, sans-serif"' in svg


def test_the_value_axis_covers_every_reading_and_every_limit_with_a_margin() -> None:
    hot = chart(points=points(20, base_c=14.0), limits=[ChartLimit(label="freeze", threshold_c=-2.0,
                                                                     direction="below", inclusive=True)])  # fmt: skip

    root = parse(temperature_svg(hot, width=680, height=270))

    ticks = [
        float(text.text.removesuffix(" °C"))
        for group in root.iter(f"{SVG}g")
        if group.get("class") == "value-axis"
        for text in group.iter(f"{SVG}text")
        if text.text
    ]
    assert min(ticks) < -2.0
    assert max(ticks) > 14.5 + 0.2


def test_an_empty_chart_says_there_are_no_readings() -> None:
    empty = chart(points=[])

    svg = temperature_svg(empty, width=680, height=200)

    root = parse(svg)
    assert [text.text for text in by_class(root, "text", "no-readings")] == ["no readings in this period"]
    title = root.find(f"{SVG}title")
    assert title is not None and title.text is not None and title.text.endswith("no readings")
    assert len(by_class(root, "line", "limit")) == 2  # the limits still show


def test_the_line_breaks_at_a_silence_and_does_not_bridge_it() -> None:
    before = points(30)
    after = points(30, start=START + timedelta(hours=12))

    root = parse(temperature_svg(chart(points=[*before, *after]), width=680, height=270))

    (mean,) = by_class(root, "path", "mean")
    assert mean.get("d", "").count("M") == 2
    assert len(list(root.iter(f"{SVG}polygon"))) == 2


def test_one_missed_reading_does_not_break_the_line_when_buckets_are_finer_than_the_logging() -> None:
    every_five_min = [p for p in points(120, bucket_s=60) if p.at.minute % 5 == 0]
    del every_five_min[10]  # one reading missed

    root = parse(temperature_svg(chart(points=every_five_min, bucket_s=60), width=680, height=270))

    (mean,) = by_class(root, "path", "mean")
    assert mean.get("d", "").count("M") == 1


def test_a_thousand_points_stay_a_small_svg() -> None:
    many = chart(points=points(1000, bucket_s=300), end=START + timedelta(seconds=1000 * 300))

    svg = temperature_svg(many, width=680, height=270)

    parse(svg)
    assert len(svg.encode()) < 60_000


def test_text_reaching_the_chart_is_escaped() -> None:
    hostile = ChartLimit(label="<script>alert(1)</script> & co", threshold_c=8.0, direction="above", inclusive=True)

    svg = temperature_svg(chart(limits=[hostile]), width=680, height=270)

    root = parse(svg)
    assert root.find(f".//{SVG}script") is None
    assert not re.search(r"<script", svg)
    labels = [text.text for text in by_class(root, "text", "limit-label")]
    assert labels == ["<script>alert(1)</script> & co ≥ 8 °C"]
