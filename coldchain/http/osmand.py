"""OsmAnd protocol ingest: a phone running Traccar Client, the OsmAnd app, or a GPS device is a tracker.

The protocol carries no signature: the device id is a device's only identity. So only a tracker registered for
the protocol (``"protocol": "osmand"``) is reached here, by the unguessable device id generated at its
registration, never by its serial; a signing tracker's serial sent here is an unknown device and changes
nothing. Parameters come in the query string, in a form body, or as Traccar Client's JSON body. The device time
in epoch milliseconds is the reading's sequence number, so a position sent twice is stored once.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl
from zoneinfo import ZoneInfo

from litestar import Request, Response, route
from litestar.enums import HttpMethod

from coldchain.domain.osmand import OsmandError, decode_json, decode_query, to_reading
from coldchain.http.deps import NowDep, PolicyDep, SettingsDep, StoreDep
from coldchain.http.errors import ApiError
from coldchain.http.judging import hand_over
from coldchain.http.limits import AuthFailures, client_address
from coldchain.http.openapi import BUSY, errors
from coldchain.services.sync import record_batch
from coldchain.services.trackers import find_osmand_tracker

__all__ = ["UNKNOWN_DEVICE", "osmand"]

UNKNOWN_DEVICE = "unknown device id: configure the device id an OsmAnd tracker got at its registration"


@route(
    ["/v1/osmand", "/v1/osmand/"],
    http_method=[HttpMethod.GET, HttpMethod.POST],
    status_code=200,
    summary="OsmAnd protocol position (query, form or JSON)",
    tags=["sync"],
    opt={"raw_query": True},
    responses=errors(401, 413, 422, 503, why={503: BUSY}),
)
async def osmand(
    request: Request[Any, Any, Any], store: StoreDep, settings: SettingsDep, policy: PolicyDep, now: NowDep
) -> Response[str]:
    failures: AuthFailures = request.app.state.auth_failures
    address = client_address(request)
    failures.check(address)
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
    tracker = await find_osmand_tracker(store, position.device_id)
    if tracker is None:
        failures.record(address)
        raise ApiError(401, "unauthenticated", UNKNOWN_DEVICE)
    await record_batch(
        store,
        tracker.id,
        [to_reading(position)],
        now=now,
        policy=policy,
        sequenced=False,
        hand_over=hand_over(request),
    )
    return Response("", status_code=200, media_type="text/plain")
