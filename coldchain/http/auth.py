"""Who is calling: bearer tokens (the operator's, or an organisation's API token) and tracker signatures
(HMAC-SHA256 over the exact body)."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from litestar import Request
from litestar.datastructures import State

from coldchain.domain.access import Principal
from coldchain.domain.parties import Tracker
from coldchain.http.errors import ApiError
from coldchain.http.limits import AuthFailures, client_address
from coldchain.services.access import authenticate
from coldchain.settings import Settings
from coldchain.storage import Store

__all__ = ["UNAUTHENTICATED_BATCH", "provide_principal", "signature_digest", "verify_signature"]

SIGNATURE_HEADER = "X-Signature"
UNAUTHENTICATED_BATCH = (
    "the batch is not signed by a registered tracker: sign the exact body with the secret the tracker got at"
    f" registration ({SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of the body>)"
)
"""One answer for an unknown tracker and a signature that does not match, so it tells no one which serials exist."""
_NO_SECRET = b"no tracker has this key"


def signature_digest(header: str | None) -> str:
    """The hex digest of ``X-Signature: sha256=<hex>``; 401 when the header is missing or of another form.

    This looks at the header alone, before any tracker is looked up, so its answers say nothing about a serial.
    """
    if not header:
        raise ApiError(401, "unauthenticated", f"missing {SIGNATURE_HEADER} header (sha256=<hex HMAC of the body>)")
    algorithm, _, given = header.partition("=")
    if algorithm.strip().lower() != "sha256" or not given.strip():
        raise ApiError(401, "unauthenticated", f"{SIGNATURE_HEADER} must be 'sha256=<hex HMAC-SHA256 of the body>'")
    return given.strip().lower()


def verify_signature(body: bytes, digest: str, tracker: Tracker | None) -> Tracker:
    """The tracker whose secret keys the HMAC of the body bytes exactly as they arrived.

    An unknown tracker, or one that signs nothing (OsmAnd), gets the same work and the same 401 as a signature
    that does not match.
    """
    signing = tracker if tracker is not None and tracker.protocol == "hmac" else None
    key = _NO_SECRET if signing is None else signing.secret.encode()
    expected = hmac.new(key, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(digest.encode(), expected.encode()) or signing is None:
        raise ApiError(401, "unauthenticated", UNAUTHENTICATED_BATCH)
    return signing


async def provide_principal(request: Request[Any, Any, Any], state: State) -> Principal:
    """The caller named by ``Authorization: Bearer <token>``: the operator, or an organisation's token."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthenticated", "send an API token as 'Authorization: Bearer <token>'")
    settings: Settings = state.settings
    store: Store = state.store
    failures: AuthFailures = state.auth_failures
    address = client_address(request)
    failures.check(address)
    principal = await authenticate(store, token.strip(), operator_token=settings.admin_token)
    if principal is None:
        failures.record(address)
        raise ApiError(401, "unauthenticated", "the API token is not valid (unknown or revoked)")
    return principal
