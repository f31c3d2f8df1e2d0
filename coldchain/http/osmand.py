"""OsmAnd protocol ingest: a phone running Traccar Client, the OsmAnd app, or a GPS device is a tracker.

The device id is the tracker's serial (register it first). Parameters come in the query string, in a form body,
or as Traccar Client's JSON body. The device time in epoch milliseconds is the reading's sequence number, so a
position sent twice is stored once. The protocol carries no signature: the device id is its only identity, as
in every OsmAnd-compatible server.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from litestar import Request, Response, route
from litestar.enums import HttpMethod

from coldchain.domain.osmand import OsmandError, decode_json, decode_query, to_reading
from coldchain.http.deps import NowDep, PolicyDep, SettingsDep, StoreDep, TrackersDep
from coldchain.http.errors import ApiError
from coldchain.http.openapi import errors
from coldchain.services.sync import record_batch

__all__ = ["osmand"]


@route(
    ["/v1/osmand", "/v1/osmand/"],
    http_method=[HttpMethod.GET, HttpMethod.POST],
    status_code=200,
    summary="OsmAnd protocol position (query, form or JSON)",
    tags=["sync"],
    opt={"raw_query": True},
    responses=errors(404, 413, 422),
)
async def osmand(
    request: Request[Any, Any, Any],
    store: StoreDep,
    settings: SettingsDep,
    trackers: TrackersDep,
    policy: PolicyDep,
    now: NowDep,
) -> Response[str]:
    zone = ZoneInfo(settings.osmand_timezone)
    body = await request.body()
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    try:
        if body and content_type == "application/json":
            position = decode_json(body, received_at=now, local_tz=zone)
        else:
            params = list(request.query_params.multi_items())
            if body and content_type == "application/x-www-form-urlencoded":
                params += parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
            position = decode_query(params, received_at=now, local_tz=zone)
    except OsmandError as exc:
        raise ApiError(400, "bad_request", str(exc)) from None
    tracker = await trackers.find(store, position.device_id)
    if tracker is None:
        raise ApiError(404, "not_found", f"unknown device {position.device_id!r}: register it as a tracker first")
    await record_batch(
        store,
        tracker.id,
        [to_reading(position)],
        now=now,
        policy=policy,
        sequenced=False,
    )
    return Response("", status_code=200, media_type="text/plain")
