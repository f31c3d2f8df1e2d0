"""Webhooks of an organisation: subscribe a URL to kinds of notifications, list, delete, read the delivery log.

An organisation's admin manages its own webhooks; the operator names the organisation. A webhook of another
organisation answers 404. The signing secret is in the answer to the creation only. What a receiver gets is
described in :mod:`coldchain.services.webhooks`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.params import JSONBody, QueryParameter
from msgspec import Meta

from coldchain.domain.notifications import (
    NOTIFICATION_KINDS,
    DeliveryStatus,
    NotificationKind,
    Webhook,
    WebhookAttempt,
    WebhookDelivery,
)
from coldchain.http.deps import NowDep, PrincipalDep, SettingsDep, StoreDep
from coldchain.http.openapi import BEARER, errors
from coldchain.http.wire import BodyIn, Id, PathId, QueryId
from coldchain.services import webhooks as use_cases

__all__ = ["AttemptOut", "DeliveryOut", "WebhookApi", "WebhookCreatedOut", "WebhookIn", "WebhookOut"]

Url = Annotated[str, Meta(min_length=1, max_length=2000, pattern=r"^[Hh][Tt][Tt][Pp][Ss]?://[^/?#\s]+")]
Kinds = Annotated[list[NotificationKind], Meta(min_length=1, max_length=len(NOTIFICATION_KINDS))]
Limit = Annotated[int, QueryParameter(ge=1, le=500, description="deliveries to show, newest first")]


class WebhookIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    organisation_id: Id | None = None
    """The caller's own organisation (the operator must name it)."""
    url: Url
    """http:// or https:// to a public address (unless the operator allows private ones), without credentials;
    redirects are not followed."""
    kinds: Kinds


class WebhookOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    organisation_id: int
    url: str
    kinds: list[NotificationKind]
    created_at: datetime
    deleted_at: datetime | None


class WebhookCreatedOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    organisation_id: int
    url: str
    kinds: list[NotificationKind]
    created_at: datetime
    secret: str
    """Keys the HMAC-SHA256 in X-Coldchain-Signature: shown in this answer only."""


class AttemptOut(msgspec.Struct, frozen=True, kw_only=True):
    attempt: int
    started_at: datetime
    worker: str
    duration_ms: float | None
    status_code: int | None
    error: str | None


class DeliveryOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    notification_id: int
    kind: NotificationKind
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    log: list[AttemptOut]


def _webhook_out(webhook: Webhook) -> WebhookOut:
    return WebhookOut(
        id=webhook.id,
        organisation_id=webhook.organisation_id,
        url=webhook.url,
        kinds=webhook.kinds,
        created_at=webhook.created_at,
        deleted_at=webhook.deleted_at,
    )


def _attempt_out(attempt: WebhookAttempt) -> AttemptOut:
    return AttemptOut(
        attempt=attempt.attempt,
        started_at=attempt.started_at,
        worker=attempt.worker,
        duration_ms=attempt.duration_ms,
        status_code=attempt.status_code,
        error=attempt.error,
    )


def _delivery_out(delivery: WebhookDelivery) -> DeliveryOut:
    return DeliveryOut(
        id=delivery.id,
        notification_id=delivery.notification_id,
        kind=delivery.kind,
        status=delivery.status,
        attempts=delivery.attempts,
        next_attempt_at=delivery.next_attempt_at,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        delivered_at=delivery.delivered_at,
        created_at=delivery.created_at,
        log=[_attempt_out(a) for a in delivery.log],
    )


class WebhookApi(Controller):
    path = "/v1/webhooks"
    tags = ["webhooks"]  # noqa: RUF012 (Litestar reads it as a class attribute)
    security = BEARER

    @post(
        "/",
        status_code=201,
        summary="Subscribe a URL to kinds of notifications; the secret is shown once",
        responses=errors(401, 403, 404, 409, 422),
    )
    async def create(
        self, data: JSONBody[WebhookIn], store: StoreDep, principal: PrincipalDep, settings: SettingsDep, now: NowDep
    ) -> WebhookCreatedOut:
        webhook, secret = await use_cases.create_webhook(
            store,
            principal,
            organisation_id=data.organisation_id,
            url=data.url,
            kinds=data.kinds,
            now=now,
            allow_private=settings.webhook_allow_private,
        )
        return WebhookCreatedOut(
            id=webhook.id,
            organisation_id=webhook.organisation_id,
            url=webhook.url,
            kinds=webhook.kinds,
            created_at=webhook.created_at,
            secret=secret,
        )

    @get(
        "/",
        summary="The organisation's webhooks (never their secrets)",
        responses=errors(401, 403, 404, 422),
    )
    async def list_webhooks(
        self, store: StoreDep, principal: PrincipalDep, organisation_id: QueryId = None
    ) -> list[WebhookOut]:
        return [_webhook_out(w) for w in await use_cases.list_webhooks(store, principal, organisation_id)]

    @delete(
        "/{webhook_id:int}",
        status_code=200,
        summary="Delete a webhook: nothing more is sent, its log stays",
        responses=errors(401, 403, 404),
    )
    async def remove(self, webhook_id: PathId, store: StoreDep, principal: PrincipalDep, now: NowDep) -> WebhookOut:
        return _webhook_out(await use_cases.delete_webhook(store, principal, webhook_id, now=now))

    @get(
        "/{webhook_id:int}/deliveries",
        summary="The delivery log, newest first, with every attempt",
        responses=errors(401, 403, 404, 422),
    )
    async def deliveries(
        self, webhook_id: PathId, store: StoreDep, principal: PrincipalDep, limit: Limit = 50
    ) -> list[DeliveryOut]:
        log = await use_cases.webhook_deliveries(store, principal, webhook_id, limit=limit)
        return [_delivery_out(d) for d in log]
