"""The shipment certificate: what an auditor, a customer or an inspector receives as proof of the conditions a
shipment was kept in (EU GDP 2013/C 343/01 ch. 9; REFERENCE §6), in two forms a third party verifies offline.

The certificate carries the investigation (:mod:`coldchain.domain.investigation`: identification, trackers,
profile, data summary, excursions, rule states, lot budget, faults, recommendation, decisions with their
signatures), the chain of custody with every hand-over and its signers, and the integrity block: the SHA-256 of
the raw readings export, the custody chain's head, the audit trail's head, the generation time and the software.
A shipment not yet delivered gets a draft only, marked so on every page and in the JSON.

The JSON form is ``{"certificate": <content>, "signature": {...}}``; the signature is Ed25519 (RFC 8032) over
the RFC 8785 (JCS) canonical bytes of ``certificate``, named by its key id (the RFC 7638 thumbprint of the public
key as a JWK). The PDF form is the same content rendered for print, signed with a PAdES signature, with the JSON
form attached.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Literal

import msgspec

from coldchain.domain.custody import CustodyKind, Location
from coldchain.domain.decisions import jcs_bytes
from coldchain.domain.investigation import Investigation

__all__ = [
    "CERTIFICATE_TYPE",
    "SIGNATURE_ALGORITHM",
    "Certificate",
    "CertificateIntegrity",
    "CustodyStep",
    "SignedJson",
    "b64url",
    "b64url_decode",
    "signing_input",
]

CERTIFICATE_TYPE = "coldchain.shipment-certificate/1"
SIGNATURE_ALGORITHM = "EdDSA"
"""JOSE's name (RFC 8037) for Ed25519 signatures."""


class CustodyStep(msgspec.Struct, frozen=True, kw_only=True):
    """One link of the chain of custody as the certificate shows it: who, where, when, and who vouched for it."""

    seq: int
    kind: CustodyKind
    party: str | None
    """Who holds the shipment after the step (organisation name)."""
    counterparty: str | None
    """Who held it before, for a step that moves it (a pick-up, hand-over, delivery or receipt)."""
    place: Location
    occurred_at: datetime
    recorded_at: datetime
    signers: list[str]
    """Each signer in words: a person's name and email with the organisation, a token, or the service on a
    tracker's evidence."""
    note: str | None
    hash: str


class CertificateIntegrity(msgspec.Struct, frozen=True, kw_only=True):
    readings_sha256: str
    """SHA-256 of the shipment's raw readings export (``GET /v1/shipments/{id}/readings.csv``)."""
    readings: int
    custody_head_seq: int | None
    custody_head_sha256: str | None
    custody_intact: bool
    audit_head_id: int | None
    audit_head_sha256: str | None
    snapshot_sha256: str
    """SHA-256 of the evaluation snapshot (what a decision signs)."""
    generated_at: datetime
    software: str
    key_id: str | None
    """The key that signs the JSON form (``None`` when the service has no signing key)."""


class Certificate(msgspec.Struct, frozen=True, kw_only=True):
    """A shipment certificate: one model, rendered as JSON (signed) and as PDF (signed, the JSON attached)."""

    certificate_id: str
    """``<shipment id>-<generation time>``: names this issue of the certificate."""
    draft: bool
    """The shipment is not delivered yet: a draft, not a certificate of conditions."""
    investigation: Investigation
    custody: list[CustodyStep]
    integrity: CertificateIntegrity


class SignedJson(msgspec.Struct, frozen=True, kw_only=True):
    """The JSON form's signature block."""

    alg: Literal["EdDSA"]
    crv: Literal["Ed25519"]
    kid: str
    canonicalization: Literal["RFC 8785"]
    value: str
    """The signature's 64 bytes, base64url without padding."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def signing_input(content: Any) -> bytes:
    """What the JSON form's signature covers: the RFC 8785 bytes of ``certificate``."""
    return jcs_bytes(content)
