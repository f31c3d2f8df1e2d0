"""Health: ``GET /health`` (which storage engine serves, and whether it answers), ``GET /health/live`` (the process
answers; nothing else is asked) and ``GET /health/ready`` (this process should be sent work: the database answers,
every migration this version knows is applied, and the process is not draining for a stop).

A process manager restarts a process whose liveness fails; a load balancer stops sending to one that is not ready,
which it does not restart. Neither takes credentials.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import msgspec
from litestar import Request, Response, get
from litestar.openapi import ResponseSpec
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from coldchain import __version__
from coldchain.http.deps import StoreDep
from coldchain.http.lifecycle import Lifecycle
from coldchain.storage import MigrationError

__all__ = ["HealthOut", "LiveOut", "ReadyOut", "health", "live", "ready"]

log = logging.getLogger("coldchain.http")


class HealthOut(msgspec.Struct, frozen=True, kw_only=True):
    status: Literal["ok", "unavailable"]
    engine: str
    database: Literal["reachable", "unreachable"]
    version: str


class LiveOut(msgspec.Struct, frozen=True, kw_only=True):
    status: Literal["ok"]
    version: str


class ReadyOut(msgspec.Struct, frozen=True, kw_only=True):
    status: Literal["ready", "unavailable", "draining"]
    """ready: all of the below hold; draining: the process is stopping; unavailable: the database is not usable."""
    database: Literal["reachable", "unreachable"]
    migrations: Literal["applied", "pending", "mismatched", "unknown"]
    """unknown while the database does not answer; mismatched: the database and this version disagree on them."""
    draining: bool
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


@get("/health/live", summary="Liveness: the process answers (the database is not asked)", cache=False)
async def live() -> LiveOut:
    return LiveOut(status="ok", version=__version__)


@get(
    "/health/ready",
    summary="Readiness: the database answers, its migrations are applied, and the process is not stopping",
    cache=False,
    responses={
        503: ResponseSpec(
            ReadyOut,
            description="Not ready: the database does not answer, migrations are pending or disagree with this"
            " version, or the process is draining for a stop.",
            generate_examples=False,
        )
    },
)
async def ready(request: Request[Any, Any, Any], store: StoreDep) -> Response[ReadyOut]:
    lifecycle: Lifecycle = request.app.state.lifecycle
    reachable = await store.ping()
    migrations: Literal["applied", "pending", "mismatched", "unknown"] = "unknown"
    if reachable:
        try:
            migrations = "pending" if await store.pending_migrations() else "applied"
        except MigrationError:
            migrations = "mismatched"
        except Exception:  # the database went away between the two questions
            log.warning("the database answered a ping but not the migrations' question", exc_info=True)
            reachable = False
    draining = lifecycle.draining
    status: Literal["ready", "unavailable", "draining"] = (
        "draining" if draining else "ready" if migrations == "applied" else "unavailable"
    )
    body = ReadyOut(
        status=status,
        database="reachable" if reachable else "unreachable",
        migrations=migrations,
        draining=draining,
        version=__version__,
    )
    return Response(body, status_code=HTTP_200_OK if status == "ready" else HTTP_503_SERVICE_UNAVAILABLE)
