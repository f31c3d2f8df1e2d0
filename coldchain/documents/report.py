"""The excursion investigation report: one read model (:class:`coldchain.domain.investigation.Investigation`), two
renderings: an HTML body the portal's investigation page embeds, and a document for print, as HTML and as PDF.

The report says, in the order a pharmacist reads it (REFERENCE §6): what was shipped and by whom, which trackers
watched it, the stability profile with every rule, the data summary and its chart, each excursion with its own
chart, each rule's status, the lot's budget, sensor faults and quarantined readings, the recommendation with every
reason, the decisions with every signature (printed name, date and time with the UTC offset, meaning: 21 CFR
11.50), and the integrity block. Times are UTC with the zone named; a device's own clock is shown with its offset.
Every number carries its unit.

The PDF (WeasyPrint) is A4 with the shipment's reference at the top of every page and, at the bottom, "page x of
y", the generation time, the software and the readings' SHA-256. :func:`report_pdf` blocks for a second or so: call
it in a thread. Fonts come from fontconfig (DejaVu Sans; ``ops/require-packages pdf``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Final

import jinja2
from markupsafe import Markup

from coldchain.documents import wording
from coldchain.documents.charts import temperature_svg
from coldchain.domain.decisions import Outcome, SignatureRole, WaitingReason
from coldchain.domain.evaluation import MktBasis, MktVerdict
from coldchain.domain.excursions import FaultReason
from coldchain.domain.investigation import DecisionView, Investigation
from coldchain.domain.profiles import Action, AlarmRule, IncompleteWindow, MktWindow, Mode, Profile, Scope
from coldchain.domain.rules import RuleStatus
from coldchain.domain.shipments import ShipmentStatus

__all__ = ["PRINT_STYLESHEET", "STYLESHEET", "TEMPLATES", "report_body", "report_html", "report_pdf"]

#: The report's stylesheet, for screen and print (all of it under ``.report``): the portal serves it beside the
#: page that embeds :func:`report_body`.
STYLESHEET: Final[Path] = Path(__file__).with_name("report.css")
#: The page box of the printed report (A4, margins, running header and footer); only :func:`report_html` uses it.
PRINT_STYLESHEET: Final[Path] = Path(__file__).with_name("print.css")
TEMPLATES: Final[Path] = Path(__file__).with_name("templates")

#: Chart sizes in CSS pixels: the width of A4's text block at 96 px per inch (180 mm), so the PDF draws them 1:1.
_CHART_WIDTH = 680
_OVERVIEW_HEIGHT = 270
_EXCURSION_HEIGHT = 210

_STATUS: dict[ShipmentStatus, str] = {
    "planned": "planned",
    "in_transit": "in transit",
    "delivered": "delivered",
    "closed": "closed",
    "cancelled": "cancelled",
}
_MODE: dict[Mode, str] = {
    "instant": "instant: one reading beyond",
    "consecutive": "consecutive: without interruption",
    "cumulative": "cumulative: total time",
}
_SCOPE: dict[Scope, str] = {
    "shipment": "this shipment",
    "rolling_24h": "any 24 h",
    "lifetime": "lot lifetime (stability budget)",
}
_ACTION: dict[Action, str] = {"warn": "warn", "quarantine": "quarantine", "reject": "reject"}
_RULE_STATUS: dict[RuleStatus, str] = {
    "ok": "within limits",
    "pending": "pending: time beyond counted, no alarm",
    "alarmed": "alarm raised",
}
_VERDICT: dict[MktVerdict, str] = {"pass": "pass", "fail": "FAIL", "review": "review needed: inconclusive"}
_BASIS: dict[MktBasis, str] = {
    "complete_window": "the worst complete window",
    "bounds": "bounds over the full window, the unrecorded time taken at the label range's ends",
    "covered_data": "the recorded time only, as the profile sets",
    "shipment": "the whole shipment",
}
_WINDOW: dict[MktWindow, str] = {"24h": "24 h", "30d": "30 days", "shipment": "the whole shipment"}
_INCOMPLETE: dict[IncompleteWindow, str] = {
    "bound": "bounded by the label range",
    "covered": "judged on the recorded time",
}
_FAULT: dict[FaultReason, str] = {
    "missing": "value missing",
    "not_a_number": "not a number",
    "out_of_range": "outside the physical range",
}
_OUTCOME: dict[Outcome, str] = {"release": "release", "quarantine": "quarantine", "reject": "reject"}
_SIGNED_AS: dict[SignatureRole, str] = {"decision": "deciding signature", "approval": "second signature, QA"}
_WAITING: dict[WaitingReason, str] = {
    "undecided": "no decision yet",
    "evaluation_changed": "the evaluation changed after the decision was signed",
    "awaiting_approval": "the decision awaits QA approval",
    "excursions": "excursions",
    "quarantine_recommended": "the recommendation is not release",
    "faults": "sensor faults, data gaps or quarantined readings",
}


def report_body(investigation: Investigation) -> Markup:
    """The report as an HTML fragment (``<article class="report">``), with its charts inline as SVG: no script,
    no inline style. Every text from the record is escaped."""
    return Markup(environment().get_template("report.html").render(section_context(investigation)))


def section_context(investigation: Investigation) -> dict[str, object]:
    """What the report's sections (``templates/sections/``) read besides the globals: the investigation, its
    charts as SVG and the lookups they use. The certificate renders the same sections from it."""
    return {
        "inv": investigation,
        "overview_svg": Markup(
            temperature_svg(investigation.chart, width=_CHART_WIDTH, height=_OVERVIEW_HEIGHT, ident="chart-shipment")
        ),
        "excursion_svgs": [
            None
            if view.chart is None
            else Markup(
                temperature_svg(
                    view.chart, width=_CHART_WIDTH, height=_EXCURSION_HEIGHT, ident=f"chart-excursion-{number}"
                )
            )
            for number, view in enumerate(investigation.excursions, start=1)
        ],
        "rules": {rule.name: rule for rule in investigation.profile.rules},
        "gaps_min": sum(gap.duration_min for gap in investigation.evaluation.gaps),
    }


def report_html(investigation: Investigation) -> str:
    """The report as a whole HTML document for print: the body, its stylesheet and the page box."""
    reference = investigation.identification.reference
    document = environment().get_template("document.html")
    return document.render(
        title=f"Excursion investigation report, shipment {reference}",
        description=f"Excursion investigation report of shipment {reference}",
        running_head=f"Excursion investigation report · shipment {reference}",
        page_mark=None,
        integrity=investigation.integrity,
        body=report_body(investigation),
        stylesheet=Markup(stylesheets()),
    )


def report_pdf(investigation: Investigation) -> bytes:
    """The report as a PDF (A4), rendered by WeasyPrint from :func:`report_html`. Blocking: run it in a thread."""
    # Importing WeasyPrint loads Pango: without it only the PDF fails, never the pages that embed the body.
    import weasyprint

    document = weasyprint.HTML(string=report_html(investigation), base_url=str(TEMPLATES))
    pdf: bytes = document.write_pdf()
    return pdf


@cache
def stylesheets() -> str:
    """The report's stylesheets for print, in one text."""
    return STYLESHEET.read_text(encoding="utf-8") + "\n" + PRINT_STYLESHEET.read_text(encoding="utf-8")


@cache
def environment() -> jinja2.Environment:
    """The documents' templates, with the filters and words they use (shared with the certificate)."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        utc=wording.utc,
        device_time=wording.device_time,
        signed_at=wording.signed_at,
        utc_exact=wording.utc_exact,
        short_hash=wording.short_hash,
        duration=wording.duration,
        hours=wording.hours,
        count=wording.count,
        measure=wording.measure,
        number=wording.number,
    )
    environment.globals.update(
        NONE=wording.NONE,
        UNITS=wording.UNITS,
        STATUS=_STATUS,
        MODE=_MODE,
        SCOPE=_SCOPE,
        ACTION=_ACTION,
        RULE_STATUS=_RULE_STATUS,
        VERDICT=_VERDICT,
        BASIS=_BASIS,
        WINDOW=_WINDOW,
        INCOMPLETE=_INCOMPLETE,
        FAULT=_FAULT,
        OUTCOME=_OUTCOME,
        SIGNED_AS=_SIGNED_AS,
        WAITING=_WAITING,
        rule_condition=_rule_condition,
        decision_state=_decision_state,
        label_range=_label_range,
    )
    return environment


def _rule_condition(rule: AlarmRule) -> str:
    return wording.condition(rule.direction, rule.threshold, rule.inclusive, rule.metric)


def _label_range(profile: Profile) -> str:
    low, high = profile.label_range_c
    return f"{low:g} to {high:g} °C"


def _decision_state(view: DecisionView) -> str:
    """Where a decision stands, in words."""
    if view.state == "superseded":
        return f"superseded by decision {view.superseded_by}" if view.superseded_by is not None else "superseded"
    if view.state == "evaluation_changed":
        changed = view.decision.evaluation_changed_at
        return "evaluation changed after signing" + (f" (on {wording.utc(changed)})" if changed else "")
    if view.state == "awaiting_approval":
        return "awaiting QA approval"
    return "in effect"
