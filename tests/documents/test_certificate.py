"""The shipment certificate as a PDF, its PAdES signature with the JSON form attached, and what tampering does to it.

The signed PDF's pages are rendered to PNGs in ``tests/artifacts/reports/`` (git-ignored) for a person to look at.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pypdf
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, pkcs12
from cryptography.x509.oid import NameOID

from coldchain.documents.certificate import DRAFT, certificate_html, certificate_pdf
from coldchain.documents.report import report_body
from coldchain.documents.signing import PdfVerdict, make_pilot_signer, sign_pdf, verify_pdf
from coldchain.domain.certificate import Certificate
from tests.documents.factories import AMIRA, CUSTODY, JONAS, LINNEA, certificate
from tests.documents.test_report import ARTIFACTS, save_pages

ATTACHMENT = b'{"certificate":{"id":"4711-20261127T091530Z"},"signature":{"alg":"EdDSA"}}'
ATTACHMENT_NAME = "SHP-2026-0042-certificate.json"
SIGNER = "Quality Assurance, Nordic Vaccines"
ORGANISATION = "Nordic Vaccines Oy"


def text_of(pdf: bytes) -> list[str]:
    """Each page's text with its runs of white space as one space (lines wrap where the layout wants)."""
    return [" ".join(page.extract_text().split()) for page in pypdf.PdfReader(io.BytesIO(pdf)).pages]


@pytest.fixture(scope="module")
def issued() -> Certificate:
    return certificate()


@pytest.fixture(scope="module")
def pdf(issued: Certificate) -> bytes:
    return certificate_pdf(issued)


@pytest.fixture(scope="module")
def pages(pdf: bytes) -> list[str]:
    return text_of(pdf)


@pytest.fixture(scope="module")
def pilot() -> bytes:
    return make_pilot_signer(SIGNER, ORGANISATION)


@pytest.fixture(scope="module")
def signed(pdf: bytes, pilot: bytes) -> bytes:
    result = sign_pdf(
        pdf,
        pkcs12=pilot,
        passphrase=None,
        attachment=ATTACHMENT,
        attachment_name=ATTACHMENT_NAME,
        reason="Shipment certificate of SHP-2026-0042",
        location="Vantaa",
    )
    save_pages(result, "certificate-signed")
    return result


def test_the_certificate_is_titled_so_and_numbers_every_page_x_of_y(pages: list[str]) -> None:
    assert "Shipment certificate · SHP-2026-0042" in pages[0]
    for number, text in enumerate(pages, start=1):
        assert f"page {number} of {len(pages)}" in text
        assert "Shipment certificate · shipment SHP-2026-0042" in text
        assert "DRAFT" not in text


def test_every_custody_step_shows_its_kind_parties_place_times_signers_and_shortened_hash(
    issued: Certificate, pages: list[str]
) -> None:
    text = " ".join(pages)

    for step, kind in zip(issued.custody, ("packed", "picked up", "handed over", "arrived", "delivered"), strict=True):
        assert f"{step.seq} {kind}" in text
        assert step.place.name is not None
        assert step.place.name in text
        assert f"{step.place.lat:.4f}°, {step.place.lon:.4f}°" in text
        assert f"occurred {step.occurred_at:%Y-%m-%d %H:%M:%S} UTC+00:00" in text
        assert f"recorded {step.recorded_at:%Y-%m-%d %H:%M:%S} UTC+00:00" in text
        assert f"SHA-256 {step.hash[:16]}…" in text
        if step.seq != issued.integrity.custody_head_seq:  # the head's hash is in the integrity block in full
            assert step.hash not in text  # the step shows it shortened; the JSON form carries it whole
        for signer in step.signers:
            assert signer.split(" <")[0] in text
        if step.note:
            assert step.note in text
    assert "handed over: Arctic Reefer Transport → Pohjola Cold Freight" in text
    assert len(issued.custody) == len(CUSTODY) == 5


def test_the_integrity_block_carries_every_hash_and_how_to_verify(issued: Certificate, pages: list[str]) -> None:
    text = " ".join(pages)
    integrity = issued.integrity

    assert f"Readings export SHA-256 {integrity.readings_sha256}" in text
    assert f"Readings {integrity.readings:,}" in text
    assert f"step {integrity.custody_head_seq} · SHA-256 {integrity.custody_head_sha256}" in text
    assert "custody chain intact" in text
    assert f"entry {integrity.audit_head_id} · SHA-256 {integrity.audit_head_sha256}" in text
    assert f"Evaluation SHA-256 {integrity.snapshot_sha256}" in text
    assert integrity.key_id is not None
    assert f"key id {integrity.key_id}" in text
    assert "coldchain verify <this PDF> --key <public key>" in text
    for page in pages:
        assert f"Readings SHA-256 {integrity.readings_sha256}" in page


def test_the_decisions_signatures_are_shown_as_in_the_report(pages: list[str]) -> None:
    for person, meaning in ((AMIRA, "approved for release"), (JONAS, "QA approval"), (LINNEA, "placed in quarantine")):
        (page,) = [text for text in pages if person.name in text and meaning in text]
        assert "UTC+00:00" in page


def test_a_broken_custody_chain_says_broken() -> None:
    html = certificate_html(certificate(intact=False))

    assert "BROKEN: the custody chain does not verify" in html
    assert "custody chain intact" not in html


def test_a_draft_says_draft_on_every_page() -> None:
    draft = certificate(draft=True)

    rendered = certificate_pdf(draft)
    pages = text_of(rendered)
    save_pages(rendered, "certificate-draft")

    assert len(pages) >= 2
    for text in pages:
        assert DRAFT in text  # the running head
    assert "Shipment certificate ·" not in " ".join(pages)
    assert "It certifies nothing." in pages[0]


def test_the_certificate_shares_the_reports_sections(issued: Certificate) -> None:
    html = certificate_html(issued)
    body = str(report_body(issued.investigation))

    for heading in ("Trackers", "Stability profile", "Data summary", "Excursions", "Decisions and signatures"):
        assert f". {heading}</h2>" in html
        assert f". {heading}</h2>" in body
    assert html.index("1. Identification") < html.index("2. Chain of custody") < html.index("3. Trackers")
    assert html.index("11. Decisions and signatures") < html.index("12. Integrity")


def test_a_signed_certificate_verifies_intact_valid_and_covering_the_whole_file(signed: bytes) -> None:
    verdict = verify_pdf(signed)

    assert verdict.signatures == 1
    assert verdict.intact
    assert verdict.valid
    assert verdict.entire_file
    assert verdict.coverage == "ENTIRE_FILE"
    assert verdict.ok
    assert verdict.signer_common_name == SIGNER
    assert verdict.signer_organisation == ORGANISATION
    assert verdict.certificate_sha256 is not None
    assert len(verdict.certificate_sha256) == 64
    assert verdict.signed_at is not None
    assert abs(verdict.signed_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert not verdict.timestamped
    assert verdict.attachments == {ATTACHMENT_NAME: ATTACHMENT}


def test_a_pilot_certificate_is_trusted_only_when_named_as_a_root(signed: bytes, pilot: bytes) -> None:
    _, certificate_x509, _ = pkcs12.load_key_and_certificates(pilot, None)
    assert certificate_x509 is not None

    untrusted = verify_pdf(signed)
    trusted = verify_pdf(signed, trust_roots=[certificate_x509.public_bytes(Encoding.PEM)])
    stranger = make_pilot_signer("Someone else", "Elsewhere Ltd")
    _, other, _ = pkcs12.load_key_and_certificates(stranger, None)
    assert other is not None

    assert not untrusted.trusted
    assert untrusted.ok  # trust is reported beside integrity, never instead of it
    assert trusted.trusted
    assert not verify_pdf(signed, trust_roots=[other.public_bytes(Encoding.DER)]).trusted


def test_a_byte_changed_inside_the_signed_range_breaks_the_signature(signed: bytes) -> None:
    # A byte of the first page's text drawing, well inside the first signed range: the digest no longer matches.
    tampered = bytearray(signed)
    at = signed.index(b"stream", 2000) + 40
    tampered[at] ^= 0x01

    verdict = verify_pdf(bytes(tampered))

    assert not verdict.intact
    assert not verdict.ok


def test_bytes_appended_after_the_signature_leave_it_covering_less_than_the_file(signed: bytes) -> None:
    verdict = verify_pdf(signed + b"\n% appended after signing\n")

    assert verdict.intact  # the signed bytes themselves are unchanged
    assert not verdict.entire_file
    assert verdict.coverage == "ENTIRE_REVISION"
    assert not verdict.ok


def test_an_unsigned_pdf_has_no_signature(pdf: bytes) -> None:
    verdict = verify_pdf(pdf)

    assert verdict == PdfVerdict(
        signatures=0, intact=False, valid=False, entire_file=False, coverage="NONE", trusted=False
    )


def test_something_that_is_not_a_pdf_is_a_verdict_not_a_crash() -> None:
    verdict = verify_pdf(b"certainly not a PDF")

    assert not verdict.ok
    assert verdict.problem is not None


def test_the_signed_pdf_renders_every_page_to_a_png(signed: bytes, pages: list[str]) -> None:
    written = sorted(ARTIFACTS.glob("certificate-signed-page-*.png"))

    assert len(written) == len(pages)
    assert all(path.stat().st_size > 10_000 for path in written)


def test_a_pilot_signer_is_a_self_signed_p256_certificate_for_signatures_valid_two_years() -> None:
    now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)

    key, issued, extra = pkcs12.load_key_and_certificates(
        make_pilot_signer(SIGNER, ORGANISATION, now=now), password=None
    )

    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert isinstance(key.curve, ec.SECP256R1)
    assert issued is not None
    assert not extra
    assert issued.subject == issued.issuer
    assert issued.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == SIGNER
    assert issued.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == ORGANISATION
    usage = issued.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert usage.content_commitment  # nonRepudiation
    assert not usage.key_cert_sign
    assert issued.not_valid_after_utc - issued.not_valid_before_utc == timedelta(days=730)
    assert issued.not_valid_before_utc <= now
