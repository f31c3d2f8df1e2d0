"""``GET /health``: which storage engine serves, and whether it answers."""

from __future__ import annotations

from typing import Literal

import msgspec
from litestar import Response, get
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from coldchain import __version__
from coldchain.http.deps import StoreDep

__all__ = ["HealthOut", "health"]


class HealthOut(msgspec.Struct, frozen=True, kw_only=True):
    status: Literal["ok", "unavailable"]
    engine: str
    database: Literal["reachable", "unreachable"]
    version: str


@get(
    "/health",
    summary="Service and storage health",
    cache=False,
    responses={503: ResponseSpec(HealthOut, description="The database does not answer.", generate_examples=False)},
)
async def health(store: StoreDep) -> Response[HealthOut]:
    reachable = await store.ping()
    body = HealthOut(
        status="ok" if reachable else "unavailable",
        engine=store.engine,
        database="reachable" if reachable else "unreachable",
        version=__version__,
    )
    return Response(body, status_code=HTTP_200_OK if reachable else HTTP_503_SERVICE_UNAVAILABLE)
