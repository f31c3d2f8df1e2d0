"""``GET /v1/events``: the caller's organisation's notifications as a server-sent event stream.

Each event is one notification: ``id`` its position (commit order), ``event`` its kind, ``data`` its JSON. A client
resumes after the last id it saw with the ``Last-Event-ID`` header (browsers send it when they reconnect) or
``?after=``; without either the stream starts with what comes next (``?after=0`` replays everything). The stream
reads the notification table, so it carries events made by any service process. It sends a comment when idle,
so proxies keep it open, and ends after ``COLDCHAIN_EVENTS_STREAM_MAX_S``, or when the process begins to drain for a
stop: clients reconnect and resume.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.params import HeaderParameter, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from coldchain.domain.notifications import Notification, NotificationKind
from coldchain.http.deps import PrincipalDep, SettingsDep, StoreDep
from coldchain.http.lifecycle import Lifecycle
from coldchain.http.openapi import BEARER, errors
from coldchain.http.wire import MAX_ID, QueryId
from coldchain.services.events import events_after, open_stream
from coldchain.settings import Settings
from coldchain.storage import Store

__all__ = ["EventOut", "events"]

# gt=-1 rather than ge=0: the same for integers, and Litestar leaves a bound of 0 out of the OpenAPI document.
AfterQuery = Annotated[int | None, QueryParameter(gt=-1, le=MAX_ID, description="resume after this event id")]
LastEventId = Annotated[int | None, HeaderParameter(name="last-event-id", gt=-1, le=MAX_ID)]
_BATCH = 100
_RECONNECT_MS = 1000

_json = msgspec.json.Encoder()


class EventOut(msgspec.Struct, frozen=True, kw_only=True):
    """The ``data`` of one event."""

    position: int
    notification_id: int
    kind: NotificationKind
    organisation_id: int
    shipment_id: int | None
    subject: str
    payload: dict[str, Any]
    created_at: datetime


def _message(notification: Notification) -> ServerSentEventMessage:
    assert notification.position is not None
    data = EventOut(
        position=notification.position,
        notification_id=notification.id,
        kind=notification.kind,
        organisation_id=notification.organisation_id,
        shipment_id=notification.shipment_id,
        subject=notification.subject,
        payload=notification.payload,
        created_at=notification.created_at,
    )
    return ServerSentEventMessage(id=notification.position, event=notification.kind, data=_json.encode(data).decode())


async def _stream(
    store: Store, organisation_id: int, after: int, settings: Settings, lifecycle: Lifecycle
) -> AsyncIterator[ServerSentEventMessage]:
    started = last_sent = time.monotonic()
    yield ServerSentEventMessage(comment=f"events of organisation {organisation_id} after {after}", data=None)
    # A process draining for a stop ends its streams at the next poll: clients resume elsewhere, and the stop does
    # not wait for them.
    while time.monotonic() - started < settings.events_stream_max_s and not lifecycle.draining:
        batch = await events_after(store, organisation_id, after=after, limit=_BATCH)
        for notification in batch:
            assert notification.position is not None  # read after commit
            yield _message(notification)
            after = notification.position
        now = time.monotonic()
        if batch:
            last_sent = now
        elif now - last_sent >= settings.events_keepalive_s:
            yield ServerSentEventMessage(comment="keep-alive", data=None)
            last_sent = now
        if len(batch) < _BATCH:
            await asyncio.sleep(settings.events_poll_s)


@get(
    "/v1/events",
    summary="The organisation's notifications as server-sent events",
    cache=False,
    security=BEARER,
    responses=errors(401, 403, 404, 422),
)
async def events(
    request: Request[Any, Any, Any],
    store: StoreDep,
    principal: PrincipalDep,
    settings: SettingsDep,
    organisation_id: QueryId = None,
    after: AfterQuery = None,
    last_event_id: LastEventId = None,
) -> ServerSentEvent:
    organisation, latest = await open_stream(store, principal, organisation_id)
    # A reconnecting browser sends Last-Event-ID with the URL it first used: the header wins over ?after=.
    start = last_event_id if last_event_id is not None else after if after is not None else latest
    lifecycle: Lifecycle = request.app.state.lifecycle
    return ServerSentEvent(_stream(store, organisation, start, settings, lifecycle), retry_duration=_RECONNECT_MS)
