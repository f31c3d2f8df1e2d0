"""The excursion investigation report: what a pharmacist reads in the PDF and in the portal's HTML body.

Every page of the PDF is rendered to a PNG in ``tests/artifacts/reports/`` (git-ignored) for a person to look at.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pypdf
import pypdfium2
import pytest

from coldchain.documents.report import PRINT_STYLESHEET, STYLESHEET, report_body, report_html, report_pdf
from coldchain.domain.investigation import Investigation, ReadingSpan
from coldchain.domain.judgement import judge_shipment
from tests.documents.factories import AMIRA, JONAS, LINNEA, PROFILE, SHIPMENT_ID, DecisionSpec, investigation

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "reports"


def save_pages(pdf: bytes, name: str) -> list[Path]:
    """Each page as a PNG, for a person to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    document = pypdfium2.PdfDocument(pdf)
    paths = []
    try:
        for index in range(len(document)):
            path = ARTIFACTS / f"{name}-page-{index + 1}.png"
            document[index].render(scale=1.5).to_pil().save(path)
            paths.append(path)
    finally:
        document.close()
    return paths


@pytest.fixture(scope="module")
def shipment() -> Investigation:
    return investigation()


@pytest.fixture(scope="module")
def pdf(shipment: Investigation) -> bytes:
    rendered = report_pdf(shipment)
    save_pages(rendered, "investigation")
    return rendered


@pytest.fixture(scope="module")
def pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]


def test_the_pdf_is_a4_and_numbers_every_page_x_of_y_under_the_shipments_reference(
    pdf: bytes, pages: list[str]
) -> None:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    width, height = float(reader.pages[0].mediabox.width), float(reader.pages[0].mediabox.height)
    assert (round(width), round(height)) == (595, 842)  # A4 in points
    assert len(pages) >= 2
    for number, text in enumerate(pages, start=1):
        assert f"page {number} of {len(pages)}" in text
        assert "shipment SHP-2026-0042" in text


def test_every_page_carries_the_generation_time_the_software_and_the_readings_sha256(
    shipment: Investigation, pages: list[str]
) -> None:
    for text in pages:
        assert f"Readings SHA-256 {shipment.integrity.readings_sha256}" in text
        assert "Generated 2026-11-27 09:15:30 UTC · coldchain 0.1.0" in text


def test_every_signature_shows_the_printed_name_the_time_with_its_utc_offset_and_the_meaning_on_one_page(
    pages: list[str],
) -> None:
    expected = [
        (AMIRA.name, "2026-11-27 07:40:12 UTC+00:00", "approved for release"),
        (JONAS.name, "2026-11-27 08:05:47 UTC+00:00", "QA approval of the release"),
        (LINNEA.name, "2026-11-27 09:02:03 UTC+00:00", "placed in quarantine"),
    ]
    for name, signed, meaning in expected:
        (page,) = [text for text in pages if name in text]  # a signature block is never split across pages
        assert signed in page
        assert meaning in page


def test_the_pdf_names_each_excursions_rule_and_the_decisions_states_in_words(
    shipment: Investigation, pages: list[str]
) -> None:
    text = "\n".join(pages)
    for number, view in enumerate(shipment.excursions, start=1):
        assert f"Excursion {number}: {view.stored.excursion.rule}" in text
    assert "Decision 1: release superseded by decision 2" in text
    assert "Decision 2: quarantine in effect" in text
    assert "OVERDUE: due before the" in text  # the first tracker's calibration
    assert "device clock 2026-11-24 08:00 UTC+02:00" in text  # the first reading as the device's clock showed it


def test_an_excursion_and_its_chart_stay_on_one_page(shipment: Investigation, pages: list[str]) -> None:
    for number in range(1, len(shipment.excursions) + 1):
        (page,) = [text for text in pages if f"Excursion {number}:" in text]
        assert f"Excursion {number} and the readings around it" in page


def test_the_report_reads_in_the_order_a_pharmacist_reads_it(shipment: Investigation) -> None:
    body = str(report_body(shipment))

    headings = [
        "1. Identification",
        "2. Trackers",
        "3. Stability profile",
        "4. Data summary",
        "5. Excursions",
        "6. Status per rule",
        "7. Lot budget",
        "8. Sensor faults, data gaps and quarantined readings",
        "9. Recommendation",
        "10. Decisions and signatures",
        "11. Integrity",
    ]
    positions = [body.index(heading) for heading in headings]
    assert positions == sorted(positions)
    assert (
        body.index('id="chart-shipment-title"')
        < body.index("5. Excursions")
        < body.index('id="chart-excursion-1-title"')
    )


def test_the_body_is_a_fragment_without_script_or_inline_style(shipment: Investigation) -> None:
    body = str(report_body(shipment))

    assert body.lstrip().startswith('<article class="report"')
    assert "<script" not in body
    assert "style=" not in body
    assert "<html" not in body
    assert body.count("<svg") == 1 + len(shipment.excursions)


def test_a_shipment_without_a_decision_says_no_decision_recorded_and_why_it_waits() -> None:
    undecided = investigation(decisions=())

    body = str(report_body(undecided))

    assert "No decision recorded." in body
    assert "no decision recorded" in body  # in the heading's summary too
    assert "The shipment waits for a pharmacist: no decision yet; excursions;" in body


def test_a_decision_awaiting_approval_and_one_whose_evaluation_changed_say_so() -> None:
    awaiting = investigation(
        decisions=[
            DecisionSpec(
                outcome="release",
                signer=AMIRA,
                signed_at=datetime(2026, 11, 27, 7, 40, tzinfo=UTC),
                requires_approval=True,
            )
        ]
    )
    changed = investigation(
        decisions=[
            DecisionSpec(
                outcome="quarantine",
                signer=LINNEA,
                signed_at=datetime(2026, 11, 27, 7, 40, tzinfo=UTC),
                evaluation_changed_at=datetime(2026, 11, 27, 8, 30, tzinfo=UTC),
            )
        ]
    )

    assert "awaiting QA approval" in str(report_body(awaiting))
    assert "evaluation changed after signing (on 2026-11-27 08:30 UTC)" in str(report_body(changed))


def test_text_from_the_record_is_shown_as_text_never_as_markup() -> None:
    hostile = investigation(
        decisions=[
            DecisionSpec(
                outcome="reject",
                signer=AMIRA,
                signed_at=datetime(2026, 11, 27, 7, 40, tzinfo=UTC),
                reason="<script>alert('x')</script> & more",
                comment='<img src=x onerror="alert(1)">',
            )
        ]
    )

    body = str(report_body(hostile))

    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more" in body
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in body
    assert "<script" not in body
    assert "<img" not in body


def test_the_print_document_carries_the_stylesheets_and_the_running_footer(shipment: Investigation) -> None:
    html = report_html(shipment)

    assert html.startswith("<!doctype html>")
    assert "counter(pages)" in html
    assert STYLESHEET.read_text(encoding="utf-8").splitlines()[0] in html
    assert PRINT_STYLESHEET.exists()
    assert f"Readings SHA-256 {shipment.integrity.readings_sha256}" in html


def test_every_page_renders_to_a_png_for_a_person_to_look_at(pdf: bytes, pages: list[str]) -> None:
    written = sorted(ARTIFACTS.glob("investigation-page-*.png"))

    assert len(written) == len(pages)
    assert all(path.stat().st_size > 10_000 for path in written)


def test_a_shipment_without_readings_renders_and_says_so() -> None:
    judged = judge_shipment(PROFILE, shipment_id=SHIPMENT_ID, streams=[], lot_spendings=[])
    base = investigation(decisions=())
    empty_chart = msgspec.structs.replace(base.chart, points=[], shaded=[])
    nothing = msgspec.structs.replace(
        base,
        span=ReadingSpan(first_at=None, first_utc_offset_min=None, last_at=None, last_utc_offset_min=None),
        evaluation=judged.evaluation,
        allowances=judged.allowances,
        quarantined=[],
        excursions=[],
        alarms=[],
        disposition=judged.disposition,
        chart=empty_chart,
        waiting=["undecided", "quarantine_recommended"],
        approval_required=False,
    )

    body = str(report_body(nothing))
    pdf = report_pdf(nothing)

    assert "no readings in this period" in body
    assert "No excursion, and no reading to judge." in body
    assert "<dt>First reading</dt><dd>—</dd>" in body
    assert "no readings" in body  # the recommendation's reason
    text = "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)
    assert "No decision recorded." in text
    save_pages(pdf, "no-readings")
