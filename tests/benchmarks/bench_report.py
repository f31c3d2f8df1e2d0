"""The excursion investigation report of a long shipment, as a PDF: how long it takes and how large it is.

    python tests/benchmarks/bench_report.py [--runs 10]

The investigation is built as the service builds it (not timed): a 30-day shipment of two trackers at one reading
a minute (43,200 readings, less two silences), judged by the domain engine, with six warm spells above 8 °C
(one of them past the heat rule's delay, raising its alarm), two freeze dips, a probe fault and decisions with their
signatures; its charts bucketed the way the readings route does (2 h buckets over the whole shipment, about 360 of
them; each excursion's chart about 240 buckets around it). Then ``report_html`` and ``report_pdf``, each ``--runs``
times after one warm-up (which pays for loading Pango and fontconfig). Prints the median and p95 in milliseconds,
the PDF's size and its pages; asserts nothing. The target is under 2 s for the whole report.

The shipment certificate of the same shipment (five custody steps) is timed the same way: ``certificate_pdf`` and
``sign_pdf`` with a pilot's PKCS#12 (ECDSA P-256, PAdES B-B, a JSON form of about the certificate's size attached),
each alone and together. The target is under 2 s for the JSON form and the signed PDF together; the JSON form is
timed where it is built, not here.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pypdf

# Run as a script, sys.path starts with this file's folder, not the repository root that holds the ``tests``
# package: this line puts the root first.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import msgspec

from coldchain.documents.certificate import certificate_pdf
from coldchain.documents.report import report_html, report_pdf
from coldchain.documents.signing import make_pilot_signer, sign_pdf
from tests.documents.factories import Trip, certificate, investigation

DAY = 1440.0
TRIP = Trip(
    days=30,
    interval_min=1,
    warm=(
        (2 * DAY + 600, 45, 9.6),
        (5 * DAY + 300, 130, 11.8),
        (9 * DAY + 900, 30, 9.1),
        (14 * DAY + 120, 55, 10.4),
        (21 * DAY + 700, 40, 9.8),
        (27 * DAY + 1000, 25, 8.9),
    ),
    cold=((11 * DAY + 200, 20, -0.8), (24 * DAY + 500, 12, -0.4)),
    faults=((7 * DAY, 3),),
    silences=((17 * DAY + 400, 100), (25 * DAY + 60, 75)),
    handover_min=15 * DAY,
)


def timed(runs: int, work: Callable[[], object]) -> list[float]:
    work()  # warm-up
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - began)
    return seconds


def quantile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    began = time.perf_counter()
    subject = investigation(TRIP, overview_buckets=400)
    built_s = time.perf_counter() - began
    chart_points = len(subject.chart.points) + sum(
        len(view.chart.points) for view in subject.excursions if view.chart is not None
    )
    print(
        f"investigation: {subject.evaluation.readings:,} readings, {len(subject.excursions)} excursions,"
        f" {len(subject.alarms)} alarms, {len(subject.decisions)} decisions, {chart_points} chart points"
        f" (whole shipment {len(subject.chart.points)} buckets of {subject.chart.bucket_s // 60} min);"
        f" built in {built_s:.2f} s (not timed below)"
    )

    html = report_html(subject)
    pdf = report_pdf(subject)
    pages = len(pypdf.PdfReader(io.BytesIO(pdf)).pages)
    for name, work in (("report_html", lambda: report_html(subject)), ("report_pdf", lambda: report_pdf(subject))):
        seconds = timed(args.runs, work)
        print(
            f"{name:<12} p50 {statistics.median(seconds) * 1000:7.0f} ms   p95 {quantile(seconds, 0.95) * 1000:7.0f} ms"
            f"   ({args.runs} runs)"
        )
    print(f"HTML {len(html.encode()):,} bytes; PDF {len(pdf):,} bytes, {pages} pages")

    issued = certificate(subject)
    pilot = make_pilot_signer("Quality Assurance, Nordic Vaccines", "Nordic Vaccines Oy")
    attachment = msgspec.json.encode(issued)  # stands in for the signed JSON form: the same content, its size

    def signed(rendered: bytes) -> bytes:
        return sign_pdf(
            rendered,
            pkcs12=pilot,
            passphrase=None,
            attachment=attachment,
            attachment_name="certificate.json",
            reason="Shipment certificate",
        )

    unsigned = certificate_pdf(issued)
    for name, work in (
        ("certificate_pdf", lambda: certificate_pdf(issued)),
        ("sign_pdf", lambda: signed(unsigned)),
        ("certificate_pdf + sign_pdf", lambda: signed(certificate_pdf(issued))),
    ):
        seconds = timed(args.runs, work)
        print(
            f"{name:<26} p50 {statistics.median(seconds) * 1000:7.0f} ms"
            f"   p95 {quantile(seconds, 0.95) * 1000:7.0f} ms   ({args.runs} runs)"
        )
    result = signed(unsigned)
    print(
        f"certificate PDF {len(unsigned):,} bytes, {len(pypdf.PdfReader(io.BytesIO(unsigned)).pages)} pages;"
        f" signed with the JSON form attached ({len(attachment):,} bytes) {len(result):,} bytes"
    )


if __name__ == "__main__":
    main()
