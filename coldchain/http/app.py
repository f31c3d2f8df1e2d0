"""The composition root: ``create_app(settings)`` builds the whole service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.logging.config import LoggingConfig
from litestar.openapi import OpenAPIConfig

from coldchain import __version__
from coldchain.http.admin import TrackerAdmin
from coldchain.http.auth import provide_principal
from coldchain.http.deps import provide_policy, provide_settings, provide_store, provide_trackers
from coldchain.http.errors import exception_handlers
from coldchain.http.health import health
from coldchain.http.organisations import OrganisationApi
from coldchain.http.osmand import osmand
from coldchain.http.products import ProductAdmin, ProfileAdmin
from coldchain.http.shipments import ShipmentApi
from coldchain.http.sync import IngestGate, sync_batch
from coldchain.services.sync import SyncPolicy
from coldchain.services.trackers import TrackerCache
from coldchain.settings import Settings, load_settings
from coldchain.storage import open_store

__all__ = ["app_from_environment", "create_app"]


def create_app(settings: Settings) -> Litestar:
    """The Litestar application for ``settings``; its lifespan opens the store (migrating it) and closes it."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        store = await open_store(settings.database_url, pool_size=settings.db_pool_size)
        app.state.store = store
        try:
            yield
        finally:
            await store.close()

    return Litestar(
        route_handlers=[
            health,
            sync_batch,
            osmand,
            OrganisationApi,
            ShipmentApi,
            TrackerAdmin,
            ProfileAdmin,
            ProductAdmin,
        ],
        lifespan=[lifespan],
        dependencies={
            "store": Provide(provide_store, sync_to_thread=False),
            "settings": Provide(provide_settings, sync_to_thread=False),
            "trackers": Provide(provide_trackers, sync_to_thread=False),
            "policy": Provide(provide_policy, sync_to_thread=False),
            "principal": Provide(provide_principal),
        },
        exception_handlers=exception_handlers,
        openapi_config=OpenAPIConfig(title="coldchain", version=__version__, path="/schema"),
        request_max_body_size=settings.max_body_bytes,
        state=State(
            {
                "settings": settings,
                "ingest_gate": IngestGate(settings.max_inflight_batches),
                "trackers": TrackerCache(settings.tracker_cache_s),
                "sync_policy": SyncPolicy(
                    max_future=timedelta(seconds=settings.max_future_s),
                    clock_drift_limit_s=settings.clock_drift_limit_s,
                ),
            }
        ),
        logging_config=LoggingConfig(
            root={"level": "WARNING", "handlers": ["queue_listener"]},
            loggers={"coldchain": {"level": settings.log_level.upper(), "propagate": True}},
            log_exceptions="never",  # the 500 handler logs what it catches, once
        ),
        debug=False,
    )


def app_from_environment() -> Litestar:
    """Factory for ASGI servers: settings from ``COLDCHAIN_*`` variables."""
    return create_app(load_settings())
