"""PAdES signatures on the certificate's PDF (ETSI EN 319 142-1, baseline B-B; B-T with a timestamp authority),
with the certificate's JSON form attached inside the signed bytes, and the check a recipient runs on the file.

:func:`sign_pdf` adds the JSON form as an embedded file (PDF 1.7 §7.11.4, MIME type ``application/json``) and a
signature in one incremental update, so the signature covers both the rendering and the attachment.
:func:`verify_pdf` reports what a reader of the file needs to know, each point on its own: whether there is
exactly one signature, whether the signed bytes are unchanged (*intact*) and the signature over them checks out
(*valid*), whether it covers the whole file (nothing appended after signing), who signed and when, and whether
the signer's certificate chains to one of the trust roots given. A pilot's self-signed certificate
(:func:`make_pilot_signer`) is trusted by nobody unless named as a root: that is a question of trust, not of
integrity, so it never makes a signature invalid.

All three functions block (pyHanko runs its own event loop for validation): call them in a thread.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import msgspec
from asn1crypto import x509 as asn1_x509  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, pkcs12
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils import embed, generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers, timestamps
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

__all__ = ["ATTACHMENT_MIME_TYPE", "SIGNATURE_FIELD", "PdfVerdict", "make_pilot_signer", "sign_pdf", "verify_pdf"]

SIGNATURE_FIELD = "CertificateSignature"
ATTACHMENT_MIME_TYPE = "application/json"
_ATTACHMENT_DESCRIPTION = "The certificate's JSON form, signed with Ed25519 over its RFC 8785 bytes"
_PILOT_VALIDITY = timedelta(days=2 * 365)


class PdfVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`verify_pdf` found. ``ok`` sums up integrity (one signature, intact, valid, covering the whole
    file); ``trusted`` is reported beside it and is not part of it."""

    signatures: int
    intact: bool
    """The signed bytes hash to the digest the signature carries."""
    valid: bool
    """The signature over that digest checks out with the signer's public key."""
    entire_file: bool
    """The signature covers every byte of the file: nothing was appended after signing."""
    coverage: str
    """pyHanko's coverage level by name (``ENTIRE_FILE``, ``ENTIRE_REVISION``, ...), or ``NONE``."""
    trusted: bool
    """The signer's certificate chains to one of the trust roots given."""
    signer_common_name: str | None = None
    signer_organisation: str | None = None
    certificate_sha256: str | None = None
    """SHA-256 fingerprint (hex) of the signer's certificate (DER)."""
    signed_at: datetime | None = None
    """The signing time the signer states (or the timestamp's, with B-T)."""
    timestamped: bool = False
    attachments: dict[str, bytes] = msgspec.field(default_factory=dict)
    """Embedded files by name."""
    problem: str | None = None
    """Why the file could not be checked at all, in words."""

    @property
    def ok(self) -> bool:
        return self.signatures == 1 and self.intact and self.valid and self.entire_file


def make_pilot_signer(common_name: str, organisation: str, *, now: datetime | None = None) -> bytes:
    """A self-signed X.509 certificate and its ECDSA P-256 key as PKCS#12 without a passphrase, valid two years,
    for digital signatures and non-repudiation: enough to sign certificates in a pilot, trusted by nobody who has
    not been given the certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
        ]
    )
    start = (now or datetime.now(UTC)) - timedelta(minutes=5)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + _PILOT_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,  # nonRepudiation (RFC 5280 §4.2.1.3)
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return pkcs12.serialize_key_and_certificates(common_name.encode(), key, certificate, None, NoEncryption())


def sign_pdf(
    pdf: bytes,
    *,
    pkcs12: bytes,
    passphrase: bytes | None,
    attachment: bytes,
    attachment_name: str,
    timestamp_url: str | None = None,
    reason: str,
    location: str | None = None,
) -> bytes:
    """``pdf`` with ``attachment`` embedded and a PAdES signature over both: baseline B-B, or B-T when
    ``timestamp_url`` names an RFC 3161 timestamp authority. Blocking: call it in a thread."""
    signer = signers.SimpleSigner.load_pkcs12_data(pkcs12, other_certs=(), passphrase=passphrase)
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    embed.embed_file(
        writer,
        embed.FileSpec(
            file_spec_string=attachment_name,
            file_name=attachment_name,
            embedded_data=embed.EmbeddedFileObject.from_file_data(
                writer,
                data=attachment,
                mime_type=ATTACHMENT_MIME_TYPE,
                params=embed.EmbeddedFileParams(embed_size=True, embed_checksum=True),
            ),
            description=_ATTACHMENT_DESCRIPTION,
            # PDF 2.0 §14.13: the attachment is the source data of what the pages show.
            af_relationship=generic.pdf_name("/Source"),
        ),
    )
    metadata = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        md_algorithm="sha256",
        reason=reason,
        location=location,
        subfilter=fields.SigSeedSubFilter.PADES,
        use_pades_lta=False,
    )
    timestamper = timestamps.HTTPTimeStamper(timestamp_url) if timestamp_url else None
    output = signers.sign_pdf(writer, metadata, signer=signer, timestamper=timestamper)
    signed: bytes = output.getvalue()
    return signed


def verify_pdf(pdf: bytes, *, trust_roots: Sequence[bytes] = ()) -> PdfVerdict:
    """Check the PDF's signature and read its attachments. ``trust_roots`` are X.509 certificates (DER or PEM)
    the caller trusts; without them nothing is trusted, and integrity is judged all the same. Blocking."""
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        embedded = list(reader.embedded_signatures)
        attachments = _attachments(reader)
    except Exception as error:  # a file pyHanko cannot parse is a verdict, not a crash
        return _unchecked(problem=f"the file is not a readable PDF: {error}")
    if not embedded:
        return _unchecked(attachments=attachments)
    context = ValidationContext(trust_roots=[_load_certificate(root) for root in trust_roots], allow_fetching=False)
    signature = embedded[-1]
    try:
        status = validate_pdf_signature(signature, context)
    except Exception as error:  # a mangled signature container is a verdict too
        return _unchecked(
            signatures=len(embedded), attachments=attachments, problem=f"the signature could not be checked: {error}"
        )
    subject = status.signing_cert.subject.native
    coverage = status.coverage
    timestamp = status.timestamp_validity
    return PdfVerdict(
        signatures=len(embedded),
        intact=status.intact,
        valid=status.valid,
        entire_file=coverage == SignatureCoverageLevel.ENTIRE_FILE,
        coverage=coverage.name if coverage is not None else "NONE",
        trusted=status.trusted,
        signer_common_name=subject.get("common_name"),
        signer_organisation=subject.get("organization_name"),
        certificate_sha256=hashlib.sha256(status.signing_cert.dump()).hexdigest(),
        signed_at=timestamp.timestamp if timestamp is not None else status.signer_reported_dt,
        timestamped=timestamp is not None,
        attachments=attachments,
    )


def _unchecked(
    *, signatures: int = 0, attachments: dict[str, bytes] | None = None, problem: str | None = None
) -> PdfVerdict:
    """A verdict without a checked signature: none in the file, or one that could not be read."""
    return PdfVerdict(
        signatures=signatures,
        intact=False,
        valid=False,
        entire_file=False,
        coverage="NONE",
        trusted=False,
        attachments=attachments or {},
        problem=problem,
    )


def _load_certificate(data: bytes) -> asn1_x509.Certificate:
    if data.lstrip().startswith(b"-----BEGIN"):
        data = x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
    return asn1_x509.Certificate.load(data)


def _attachments(reader: PdfFileReader) -> dict[str, bytes]:
    """The document's embedded files (its ``/EmbeddedFiles`` name tree, flat or with kids), by name."""
    found: dict[str, bytes] = {}
    try:
        tree = reader.root["/Names"]["/EmbeddedFiles"]
    except KeyError:
        return found
    pending = [tree]
    while pending:
        node = pending.pop().get_object()
        names = node["/Names"].get_object() if "/Names" in node else []
        for index in range(0, len(names) - 1, 2):
            spec = names[index + 1].get_object()
            found[str(names[index].get_object())] = spec["/EF"]["/F"].data
        if "/Kids" in node:
            pending.extend(node["/Kids"].get_object())
    return found
