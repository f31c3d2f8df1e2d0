"""Security headers on every answer, set in one place: a ``before_send`` hook, which Litestar runs for every
answer of the app (also a 404 for a path no route holds, or a 405).

- ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer`` everywhere;
- a Content-Security-Policy: the API's answers are data, never pages (``default-src 'none'``); the documentation
  pages load scripts, styles and images from the service alone (their script runs from a file, not inline);
- ``Cache-Control: no-store`` on every answer that does not set its own, so answers that carry a token or a secret
  (a tracker's or a webhook's secret, an API token) and tenant data are never kept by a cache; the documentation's
  static assets may be cached.
"""

from __future__ import annotations

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

from coldchain.http.openapi import ASSETS_PATH, DOCS_PATH

__all__ = ["add_security_headers"]

_API_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
_DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_ALWAYS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}


async def add_security_headers(message: Message, scope: Scope) -> None:
    # A coroutine, though it awaits nothing: Litestar runs a plain function hook in a worker thread, twice per answer.
    if message["type"] != "http.response.start":
        return
    path: str = scope["path"]
    headers = MutableScopeHeaders.from_message(message)
    for name, value in _ALWAYS.items():
        headers.setdefault(name, value)
    docs = path == DOCS_PATH or path.startswith(DOCS_PATH + "/")
    headers.setdefault("Content-Security-Policy", _DOCS_POLICY if docs else _API_POLICY)
    if not path.startswith(ASSETS_PATH + "/"):
        headers.setdefault("Cache-Control", "no-store")
