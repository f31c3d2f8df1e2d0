"""Who is calling: bearer tokens (the operator's, or an organisation's API token) and tracker signatures
(HMAC-SHA256 over the exact body)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from litestar import Request
from litestar.datastructures import State

from coldchain.domain.access import Principal
from coldchain.http.errors import ApiError
from coldchain.services.access import authenticate
from coldchain.settings import Settings
from coldchain.storage import Store

__all__ = ["provide_principal", "verify_signature"]

SIGNATURE_HEADER = "X-Signature"


def verify_signature(body: bytes, header: str | None, secret: str) -> None:
    """Check ``X-Signature: sha256=<hex>`` against the body bytes exactly as they arrived."""
    if not header:
        raise ApiError(401, "unauthenticated", f"missing {SIGNATURE_HEADER} header (sha256=<hex HMAC of the body>)")
    algorithm, _, given = header.partition("=")
    if algorithm.strip().lower() != "sha256" or not given:
        raise ApiError(401, "unauthenticated", f"{SIGNATURE_HEADER} must be 'sha256=<hex HMAC-SHA256 of the body>'")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(given.strip().lower().encode(), expected.encode()):
        raise ApiError(401, "unauthenticated", "the signature does not match the body and the tracker's secret")


async def provide_principal(request: Request[Any, Any, Any], state: State) -> Principal:
    """The caller named by ``Authorization: Bearer <token>``: the operator, or an organisation's token."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthenticated", "send an API token as 'Authorization: Bearer <token>'")
    settings: Settings = state.settings
    store: Store = state.store
    principal = await authenticate(store, token.strip(), operator_token=settings.admin_token)
    if principal is None:
        raise ApiError(401, "unauthenticated", "the API token is not valid (unknown or revoked)")
    return principal
