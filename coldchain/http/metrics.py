"""``GET /metrics``: the service's metrics (:mod:`coldchain.metrics`) in the Prometheus text format.

On the service's own address the route asks for ``COLDCHAIN_METRICS_TOKEN`` as a bearer token, and answers 404 when
no token is set: the figures (batch rates, job failures, pool use) are for operators, not for the world. The
other way is ``COLDCHAIN_METRICS_ADDRESS``, a listener of its own on an internal address without a token
(``coldchain serve`` starts it: see :mod:`coldchain.cli`). A wrong token counts as a failed authentication of the
client address, as a wrong API token does.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from litestar import Request, Response, get
from litestar.openapi import ResponseSpec

from coldchain.http.deps import SettingsDep, StoreDep
from coldchain.http.errors import ApiError
from coldchain.http.limits import AuthFailures, client_address
from coldchain.http.openapi import METRICS, errors
from coldchain.metrics import CONTENT_TYPE, DB_POOL_CONNECTIONS, DB_POOL_MAX_CONNECTIONS, exposition
from coldchain.storage import Store

__all__ = ["POOL_SAMPLE_S", "metrics", "record_connections", "sampling_connections"]

POOL_SAMPLE_S = 1.0
"""How often each process writes down its database connections (a scrape also writes its own process's first)."""


def record_connections(store: Store) -> None:
    use = store.connections()
    DB_POOL_CONNECTIONS.labels(state="in_use").set(use.in_use)
    DB_POOL_CONNECTIONS.labels(state="idle").set(use.idle)
    DB_POOL_MAX_CONNECTIONS.set(use.max)


@asynccontextmanager
async def sampling_connections(store: Store, interval_s: float = POOL_SAMPLE_S) -> AsyncIterator[None]:
    """Write down ``store``'s connections every ``interval_s`` while open, so a scrape of any process sees every
    process's pool."""

    async def sample() -> None:
        while True:
            record_connections(store)
            await asyncio.sleep(interval_s)

    task = asyncio.create_task(sample())
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task


def _bearer(request: Request[Any, Any, Any]) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


@get(
    "/metrics",
    summary="The service's metrics in the Prometheus text format",
    description="Served here only when COLDCHAIN_METRICS_TOKEN is set, to callers that send it as a bearer token;"
    " otherwise 404. Figures are summed over the service's processes.",
    tags=["operations"],
    security=METRICS,
    cache=False,
    media_type=CONTENT_TYPE,
    responses={
        200: ResponseSpec(str, description="Prometheus text format 0.0.4.", media_type="text/plain"),
        **errors(
            401,
            404,
            422,
            why={
                401: "No metrics token, or not the one the service is configured with.",
                404: "Metrics are not served on this address (COLDCHAIN_METRICS_TOKEN is not set).",
                422: "A query parameter was sent: the route takes none.",
            },
        ),
    },
)
async def metrics(request: Request[Any, Any, Any], settings: SettingsDep, store: StoreDep) -> Response[bytes]:
    if settings.metrics_token is None:
        raise ApiError(404, "not_found", "metrics are not served on this address")
    failures: AuthFailures = request.app.state.auth_failures
    address = client_address(request)
    failures.check(address)
    token = _bearer(request)
    if token is None:
        raise ApiError(401, "unauthenticated", "send the metrics token: Authorization: Bearer <token>")
    if not hmac.compare_digest(token.encode(), settings.metrics_token.encode()):
        failures.record(address)
        raise ApiError(401, "unauthenticated", "that is not the metrics token")
    record_connections(store)
    return Response(exposition(), media_type=CONTENT_TYPE)
