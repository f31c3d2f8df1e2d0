"""The shipment certificate for print: the same rendering as the excursion report (its sections, stylesheets and
page box), with the chain of custody after the identification and the certificate's own integrity block
(:class:`coldchain.domain.certificate.Certificate`; REFERENCE §6).

A draft (the shipment is not delivered) says so on every page: in the running head, in a band under the title and
in a mark across each page, so that no page of it can pass for a certificate. The PDF is A4 with "page x of y"
and the readings' SHA-256 at the bottom of every page, as the report has. Signing the PDF is
:mod:`coldchain.documents.signing`'s.
"""

from __future__ import annotations

from markupsafe import Markup

from coldchain.documents import report
from coldchain.domain.certificate import Certificate
from coldchain.domain.custody import CustodyKind, Location

__all__ = ["CERTIFICATE_STYLESHEET", "DRAFT", "certificate_html", "certificate_pdf"]

#: The certificate's additions to the report's stylesheets (custody steps, integrity, draft marks).
CERTIFICATE_STYLESHEET = report.TEMPLATES.parent / "certificate.css"

#: What a draft says on every page.
DRAFT = "DRAFT — shipment not delivered: not a certificate"

_CUSTODY_KIND: dict[CustodyKind, str] = {
    "packed": "packed",
    "picked_up": "picked up",
    "handed_over": "handed over",
    "arrived": "arrived",
    "delivered": "delivered",
    "received": "received",
}
#: How much of a step's SHA-256 the page shows; the JSON form carries it whole.
_SHORT_HASH = 16


def certificate_html(certificate: Certificate) -> str:
    """The certificate as a whole HTML document for print."""
    environment = report.environment()
    reference = certificate.investigation.identification.reference
    body = environment.get_template("certificate.html").render(
        certificate=certificate,
        DRAFT=DRAFT,
        CUSTODY_KIND=_CUSTODY_KIND,
        place=_place,
        **report.section_context(certificate.investigation),
    )
    if certificate.draft:
        title = f"Draft shipment certificate, shipment {reference}: not a certificate"
        running_head = Markup('<strong class="certificate-draft-head">{}</strong> · shipment {}').format(
            DRAFT, reference
        )
    else:
        title = f"Shipment certificate, shipment {reference}"
        running_head = Markup("Shipment certificate · shipment {} · {}").format(reference, certificate.certificate_id)
    return environment.get_template("document.html").render(
        title=title,
        description=title,
        running_head=running_head,
        page_mark="DRAFT" if certificate.draft else None,
        integrity=certificate.integrity,
        body=Markup(body),
        stylesheet=Markup(report.stylesheets() + "\n" + CERTIFICATE_STYLESHEET.read_text(encoding="utf-8")),
    )


def certificate_pdf(certificate: Certificate) -> bytes:
    """The certificate as a PDF (A4), rendered by WeasyPrint from :func:`certificate_html`; unsigned
    (:func:`coldchain.documents.signing.sign_pdf` signs it). Blocking: run it in a thread."""
    import weasyprint

    document = weasyprint.HTML(string=certificate_html(certificate), base_url=str(report.TEMPLATES))
    pdf: bytes = document.write_pdf()
    return pdf


def _place(place: Location) -> str:
    where = f"{place.lat:.4f}°, {place.lon:.4f}°"
    return f"{place.name} ({where})" if place.name else where
