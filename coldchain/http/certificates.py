"""Shipment certificates and the keys that verify them.

``GET /v1/shipments/{id}/certificate`` gives the JSON form, signed with Ed25519 over the RFC 8785 bytes of its
``certificate`` member; ``GET /v1/shipments/{id}/certificate.pdf`` the PDF form, with a PAdES signature and the
JSON form attached. A shipment not delivered yet gets a draft, marked so. ``GET /.well-known/coldchain-keys``
publishes the public keys (JWKS), the current one and retired ones, to anyone: a key is public.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.openapi import ResponseSpec

from coldchain.documents.certificate import certificate_pdf
from coldchain.documents.signing import sign_pdf
from coldchain.domain.certificate import Certificate
from coldchain.http.deps import NowDep, PrincipalDep, SettingsDep, StoreDep
from coldchain.http.errors import ApiError
from coldchain.http.openapi import BEARER, errors
from coldchain.http.wire import PathId
from coldchain.keys import KeyRing, sign_json
from coldchain.services import certificates as use_cases
from coldchain.settings import Settings

__all__ = ["CertificateApi", "published_keys"]

_NO_KEY = (
    "the service holds no key to sign certificates with: set COLDCHAIN_SIGNING_KEY_FILE (and COLDCHAIN_PDF_SIGNER_FILE"
    " for PDFs); `coldchain keys generate --dir DIR` makes them"
)


def _keyring(request: Request[Any, Any, Any]) -> KeyRing:
    keyring: KeyRing = request.app.state.keyring
    return keyring


def _require_keys(keyring: KeyRing, pdf_signer: bytes | None = b"") -> None:
    """503 when the service cannot sign (asked after the shipment's visibility: an outsider learns nothing)."""
    if keyring.signing_key is None or pdf_signer is None:
        raise ApiError(503, "unavailable", _NO_KEY)


def _signed_json(issued: Certificate, keyring: KeyRing) -> bytes:
    assert keyring.signing_key is not None
    document = sign_json(use_cases.certificate_content(issued), keyring.signing_key)
    return (json.dumps(document, ensure_ascii=False, indent=1) + "\n").encode()


def _file_name(issued: Certificate, suffix: str) -> str:
    return f"certificate-{issued.certificate_id}{suffix}"


@get(
    "/.well-known/coldchain-keys",
    summary="The public keys that verify certificates (JWKS): the current one and retired ones",
    tags=["certificates"],
    security=[],
    responses={200: ResponseSpec(dict[str, Any], description="A JWK Set (RFC 7517) of Ed25519 keys (RFC 8037).")},
)
async def published_keys(request: Request[Any, Any, Any]) -> dict[str, Any]:
    keyring: KeyRing = request.app.state.keyring
    return keyring.jwks()


class CertificateApi(Controller):
    path = "/v1/shipments/{shipment_id:int}"
    tags = ["certificates"]  # noqa: RUF012 (Litestar reads it as a class attribute)
    security = BEARER

    @get(
        "/certificate",
        summary="The shipment certificate, JSON form, signed (Ed25519 over its RFC 8785 bytes)",
        responses={
            200: ResponseSpec(
                dict[str, Any],
                description=(
                    '{"certificate": {...}, "signature": {"alg": "EdDSA", "crv": "Ed25519", "kid": "...",'
                    ' "canonicalization": "RFC 8785", "value": "<base64url>"}}'
                ),
            ),
            **errors(401, 404, 503),
        },
    )
    async def certificate_json(
        self,
        request: Request[Any, Any, Any],
        shipment_id: PathId,
        store: StoreDep,
        principal: PrincipalDep,
        now: NowDep,
    ) -> Response[bytes]:
        """A shipment not delivered yet gets a draft (``"draft": true``). Verify with a key of
        ``/.well-known/coldchain-keys``, or ``coldchain verify FILE --key KEY``."""
        keyring = _keyring(request)
        issued = await use_cases.certificate(store, principal, shipment_id, now=now, key_id=keyring.current_kid)
        _require_keys(keyring)
        content = _signed_json(issued, keyring)
        return Response(
            content,
            media_type="application/json",
            headers={"Content-Disposition": f'inline; filename="{_file_name(issued, ".json")}"'},
        )

    @get(
        "/certificate.pdf",
        summary="The shipment certificate, PDF form: PAdES-signed, with the JSON form attached",
        media_type="application/pdf",
        responses={
            200: ResponseSpec(
                bytes, description="The signed certificate (application/pdf).", media_type="application/pdf"
            ),
            **errors(401, 404, 503),
        },
    )
    async def certificate_pdf(
        self,
        request: Request[Any, Any, Any],
        shipment_id: PathId,
        store: StoreDep,
        principal: PrincipalDep,
        settings: SettingsDep,
        now: NowDep,
    ) -> Response[bytes]:
        keyring = _keyring(request)
        signer: bytes | None = request.app.state.pdf_signer
        issued = await use_cases.certificate(store, principal, shipment_id, now=now, key_id=keyring.current_kid)
        _require_keys(keyring, signer)
        assert signer is not None
        signed = await asyncio.to_thread(_signed_pdf, issued, keyring, signer, settings)
        return Response(
            signed,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{_file_name(issued, ".pdf")}"'},
        )


def _signed_pdf(issued: Certificate, keyring: KeyRing, signer: bytes, settings: Settings) -> bytes:
    attachment = _signed_json(issued, keyring)
    draft = "draft " if issued.draft else ""
    return sign_pdf(
        certificate_pdf(issued),
        pkcs12=signer,
        passphrase=None if settings.pdf_signer_passphrase is None else settings.pdf_signer_passphrase.encode(),
        attachment=attachment,
        attachment_name=_file_name(issued, ".json"),
        timestamp_url=settings.timestamp_url,
        reason=(
            f"coldchain {draft}shipment certificate {issued.certificate_id};"
            f" JSON form SHA-256 {hashlib.sha256(attachment).hexdigest()}"
        ),
    )
