"""Who is calling: bearer tokens (the operator's, or an organisation's API token), portal sessions (a cookie
naming a server-side session of a signed-in user), and tracker signatures (HMAC-SHA256 over the exact body).

A request with an ``Authorization`` header is judged by its token alone. Otherwise the session cookie names the
caller, and a state-changing request (anything but GET, HEAD, OPTIONS) must carry the session's CSRF token, in
the ``X-CSRF-Token`` header or a form's ``csrf_token`` field (OWASP CSRF Prevention Cheat Sheet, synchroniser
token): a cookie alone, which another site can make a browser send, changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Any

from litestar import Request
from litestar.datastructures import State

from coldchain.domain.access import Principal
from coldchain.domain.parties import Tracker
from coldchain.http.errors import ApiError
from coldchain.http.limits import AuthFailures, client_address
from coldchain.services.access import authenticate
from coldchain.services.users import session_principal
from coldchain.settings import Settings
from coldchain.storage import Store

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "UNAUTHENTICATED_BATCH",
    "check_csrf",
    "provide_principal",
    "request_session",
    "signature_digest",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Signature"
SESSION_COOKIE = "coldchain_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
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


async def request_session(request: Request[Any, Any, Any], state: State) -> tuple[Principal, str] | None:
    """The signed-in user the request's session cookie names, with the session's CSRF token; ``None`` without a
    valid session."""
    session_id = request.cookies.get(SESSION_COOKIE)
    if not session_id or len(session_id) > 128:
        return None
    settings: Settings = state.settings
    now: datetime = state.clock()
    return await session_principal(state.store, session_id, idle=timedelta(seconds=settings.session_idle_s), now=now)


async def _csrf_token_sent(request: Request[Any, Any, Any]) -> str:
    header = request.headers.get(CSRF_HEADER.lower())
    if header:
        return header
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def check_csrf(request: Request[Any, Any, Any], csrf_token: str) -> None:
    """403 unless a state-changing request carries the session's CSRF token (safe methods need none)."""
    if request.method in _SAFE_METHODS:
        return
    sent = await _csrf_token_sent(request)
    if not hmac.compare_digest(sent.encode(), csrf_token.encode()):
        raise ApiError(
            403,
            "forbidden",
            f"a change made with a session needs the session's CSRF token ({CSRF_HEADER} header or"
            f" {CSRF_FIELD} form field)",
        )


async def provide_principal(request: Request[Any, Any, Any], state: State) -> Principal:
    """The caller named by ``Authorization: Bearer <token>`` (the operator, or an organisation's token), or else
    by the portal session cookie (with the CSRF token on state-changing requests)."""
    if "authorization" not in request.headers and SESSION_COOKIE in request.cookies:
        found = await request_session(request, state)
        if found is None:
            raise ApiError(401, "unauthenticated", "the session has ended or expired: sign in again")
        signed_in, csrf_token = found
        await check_csrf(request, csrf_token)
        return signed_in
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401, "unauthenticated", "send an API token as 'Authorization: Bearer <token>', or sign in to the portal"
        )
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
