"""The composition root: ``create_app(settings, clock=...)`` builds the whole service."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from datetime import timedelta

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from coldchain import __version__
from coldchain.http.admin import TrackerAdmin
from coldchain.http.audit import AuditApi
from coldchain.http.auth import provide_principal
from coldchain.http.certificates import CertificateApi, published_keys
from coldchain.http.custody import CustodyApi
from coldchain.http.decisions import DecisionApi, worklist
from coldchain.http.deps import (
    Clock,
    provide_ingest,
    provide_now,
    provide_policy,
    provide_settings,
    provide_store,
    provide_trackers,
    system_clock,
)
from coldchain.http.epcis import shipment_epcis
from coldchain.http.errors import ServiceRequest, exception_handlers
from coldchain.http.evaluation import EvaluationApi, shipment_status
from coldchain.http.events import events
from coldchain.http.exports import ExportApi
from coldchain.http.headers import add_security_headers
from coldchain.http.health import health, live, ready
from coldchain.http.judging import before_request
from coldchain.http.lifecycle import Lifecycle
from coldchain.http.limits import AuthFailures
from coldchain.http.logs import configure_logging
from coldchain.http.metrics import metrics, sampling_connections
from coldchain.http.notifications import EscalationApi, PreferencesApi
from coldchain.http.openapi import openapi_config
from coldchain.http.organisations import OrganisationApi
from coldchain.http.osmand import osmand
from coldchain.http.portal import TEMPLATES, portal_routes, template_filters
from coldchain.http.portal_api import alarm_inbox, board, shipment_readings
from coldchain.http.products import ProductAdmin, ProfileAdmin
from coldchain.http.shipments import ShipmentApi
from coldchain.http.sync import IngestGate, sync_batch
from coldchain.http.users import SessionApi, UserApi
from coldchain.http.webhooks import WebhookApi
from coldchain.keys import KeyFileError, KeyRing, load_keyring
from coldchain.metrics import forget_process
from coldchain.services.judging import Judge
from coldchain.services.retention import prepare_reading_months
from coldchain.services.sync import SyncPolicy
from coldchain.services.trackers import TrackerCache
from coldchain.settings import Settings, SettingsError, load_settings
from coldchain.storage import StorageError, Store, open_store

__all__ = ["Background", "app_from_environment", "create_app"]

log = logging.getLogger("coldchain.http")

Background = Callable[[Store], AbstractAsyncContextManager[object]]
"""Work that runs beside the HTTP service while the app runs, given the open store (the jobs: see ``coldchain.cli``)."""


def create_app(
    settings: Settings,
    *,
    clock: Clock = system_clock,
    background: Sequence[Background] = (),
    lifecycle: Lifecycle | None = None,
    drain_on_signals: bool = False,
) -> Litestar:
    """The Litestar application for ``settings``; its lifespan opens the store (migrating it), runs ``background``
    beside the service, and stops it before closing the store. Every route takes the time from ``clock`` (an aware
    UTC datetime per call), so tests can set the service's "now". With ``drain_on_signals`` (``coldchain serve``),
    SIGTERM and SIGINT drain the process before the ASGI server stops it (:mod:`coldchain.http.lifecycle`);
    ``lifecycle`` is the draining state the routes read (a fresh one by default)."""
    lifecycle = lifecycle or Lifecycle()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        store = await open_store(settings.database_url, pool_size=settings.db_pool_size)
        app.state.store = store
        try:
            await prepare_reading_months(store, now=clock(), months=settings.readings_partitions_ahead)
        except StorageError as exc:  # the default partition takes the readings meanwhile; the hourly job retries
            log.warning("could not make the readings partitions ahead at start-up: %s", exc)
        try:
            async with AsyncExitStack() as running:
                for start in background:
                    await running.enter_async_context(start(store))
                await running.enter_async_context(sampling_connections(store))
                if settings.judge_after_commit:
                    judge = Judge(
                        store,
                        clock=clock,
                        linger_s=settings.judge_linger_s,
                        sweep_s=settings.judge_sweep_s,
                        orphaned_s=settings.judge_orphaned_after_s,
                        concurrency=settings.judge_concurrency,
                        max_held=settings.judge_max_held_readings,
                    )
                    app.state.judge = await running.enter_async_context(judge.running(stop_s=settings.stop_timeout_s))
                if drain_on_signals:
                    await running.enter_async_context(lifecycle.draining_on_signals(settings.drain_s))
                yield
        finally:
            await store.close()
            forget_process(os.getpid())  # this process's live gauges (batches in flight, connections) end with it

    return Litestar(
        route_handlers=[
            health,
            live,
            ready,
            metrics,
            sync_batch,
            osmand,
            OrganisationApi,
            ShipmentApi,
            shipment_status,  # after ShipmentApi, which holds POST on the same path
            EvaluationApi,
            DecisionApi,
            ExportApi,
            AuditApi,
            worklist,
            CertificateApi,
            published_keys,
            CustodyApi,
            shipment_epcis,
            TrackerAdmin,
            ProfileAdmin,
            ProductAdmin,
            WebhookApi,
            PreferencesApi,
            EscalationApi,
            events,
            SessionApi,
            UserApi,
            board,
            shipment_readings,
            alarm_inbox,
            *portal_routes(settings),
        ],
        lifespan=[lifespan],
        dependencies={
            "store": Provide(provide_store, sync_to_thread=False),
            "settings": Provide(provide_settings, sync_to_thread=False),
            "trackers": Provide(provide_trackers, sync_to_thread=False),
            "policy": Provide(provide_policy, sync_to_thread=False),
            "principal": Provide(provide_principal),
            "now": Provide(provide_now, sync_to_thread=False),
            "ingest": Provide(provide_ingest, sync_to_thread=False),
        },
        exception_handlers=exception_handlers,
        template_config=TemplateConfig(
            directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=_register_filters
        ),
        request_class=ServiceRequest,
        before_send=[add_security_headers],
        before_request=before_request,
        openapi_config=openapi_config(__version__),
        request_max_body_size=settings.max_body_bytes,
        state=State(
            {
                "settings": settings,
                "clock": clock,
                "lifecycle": lifecycle,
                "ingest_gate": IngestGate(settings.max_inflight_batches),
                "auth_failures": AuthFailures(settings.auth_failure_limit, settings.auth_failure_window_s),
                "trackers": TrackerCache(settings.tracker_cache_s),
                "keyring": _keyring(settings),
                "pdf_signer": _pdf_signer(settings),
                "sync_policy": SyncPolicy(
                    max_future=timedelta(seconds=settings.max_future_s),
                    clock_drift_limit_s=settings.clock_drift_limit_s,
                    max_seq_jump=settings.sync_max_seq_jump,
                    judge_after_commit=settings.judge_after_commit,
                ),
                "judge": None,
            }
        ),
        logging_config=None,  # configured above, once per process; the 500 handler logs what it catches, once
        debug=False,
    )


def _register_filters(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters.update(template_filters())


def app_from_environment() -> Litestar:
    """Factory for ASGI servers: settings from ``COLDCHAIN_*`` variables."""
    return create_app(load_settings())


def _pdf_signer(settings: Settings) -> bytes | None:
    """The PKCS#12 that signs certificates' PDF form, read once; an unreadable file stops start-up."""
    if settings.pdf_signer_file is None:
        return None
    try:
        with open(settings.pdf_signer_file, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise SettingsError(
            f"COLDCHAIN_PDF_SIGNER_FILE: cannot read {settings.pdf_signer_file}: {exc.strerror}"
        ) from None


def _keyring(settings: Settings) -> KeyRing:
    try:
        return load_keyring(settings)
    except KeyFileError as exc:
        raise SettingsError(f"COLDCHAIN_SIGNING_KEY_FILE / COLDCHAIN_PUBLISHED_KEYS_FILE: {exc}") from None
