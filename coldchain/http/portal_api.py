"""The APIs the portal stands on, documented for API clients too: ``GET /v1/board`` (every shipment in transit
in one call), ``GET /v1/shipments/{id}/readings`` (a time range, paged by key, as JSON or CSV, or summarised per
bucket with ``resolution``), and ``GET /v1/alarms`` (the alarm inbox across shipments).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import msgspec
from litestar import Response, get
from litestar.params import QueryParameter

from coldchain.domain.board import BoardState
from coldchain.domain.eta import EtaEstimate
from coldchain.domain.portal import ReadingBucket, ReadingKey, ShipmentReading
from coldchain.domain.shipments import Priority
from coldchain.http.deps import NowDep, PrincipalDep, SettingsDep, StoreDep
from coldchain.http.errors import ApiError
from coldchain.http.evaluation import AlarmOut, alarm_out
from coldchain.http.openapi import BEARER, errors
from coldchain.http.wire import MAX_ID, PathId
from coldchain.services import portal as use_cases

__all__ = ["BoardOut", "TimeQuery", "alarm_inbox", "board", "moment", "parse_after", "shipment_readings"]

RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})$"
TimeQuery = Annotated[
    str | None, QueryParameter(pattern=RFC3339, max_length=40, description="RFC 3339 with a UTC offset")
]
AfterQuery = Annotated[
    str | None,
    QueryParameter(max_length=80, description="the `next` of the previous page: the readings after that key"),
]
LimitQuery = Annotated[int, QueryParameter(ge=1, le=use_cases.MAX_PAGE)]
ResolutionQuery = Annotated[
    int | None,
    QueryParameter(
        ge=1, le=31 * 86_400, description="seconds per bucket: min, mean and max per bucket instead of readings"
    ),
]
FormatQuery = Annotated[Literal["json", "csv"], QueryParameter(description="json (default) or csv")]
InboxLimit = Annotated[int, QueryParameter(ge=1, le=1000)]


class PlaceOut(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    lat: float
    lon: float


class BoardShipmentOut(msgspec.Struct, frozen=True, kw_only=True):
    shipment_id: int
    reference: str
    state: BoardState
    """alarm, at_risk, late_data (unacknowledged alarms all detected late), silent, ok."""
    organisation_id: int
    product_id: int
    product_name: str
    lot_id: int | None
    lot_number: str | None
    origin: PlaceOut
    destination: PlaceOut
    promised_at: datetime | None
    priority: Priority
    custodian_id: int | None
    custodian_name: str | None
    temperature_c: float | None
    temperature_at: datetime | None
    latitude: float | None
    longitude: float | None
    position_at: datetime | None
    open_alarms: int
    escalated_alarms: int
    late_alarms: int
    last_sync_at: datetime | None
    eta_computed_at: datetime | None
    at_risk: bool | None
    eta: EtaEstimate | None
    eta_reasons: list[str]


class BoardOut(msgspec.Struct, frozen=True, kw_only=True):
    computed_at: datetime
    shipments: list[BoardShipmentOut]


class ReadingOut(msgspec.Struct, frozen=True, kw_only=True):
    serial: str
    seq: int
    device_time: datetime
    utc_offset_min: int
    temperature_c: float | None
    humidity_pct: float | None
    pressure_kpa: float | None
    latitude: float | None
    longitude: float | None
    battery_pct: float | None


class ReadingsOut(msgspec.Struct, frozen=True, kw_only=True):
    start: datetime
    end: datetime
    resolution_s: int | None
    readings: list[ReadingOut] | None
    """The readings (without ``resolution``), in device-time order."""
    buckets: list[ReadingBucket] | None
    """Per bucket of ``resolution_s`` seconds (with ``resolution``): count, min, mean and max of each metric."""
    next: str | None
    """Pass as ``after`` for the next page (``None``: this was the last)."""


class InboxAlarmOut(msgspec.Struct, frozen=True, kw_only=True):
    shipment_id: int
    reference: str
    alarm: AlarmOut


def parse_after(after: str | None) -> ReadingKey | None:
    if after is None:
        return None
    try:
        moment, tracker, seq = after.rsplit("_", 2)
        key = ReadingKey(device_time=datetime.fromisoformat(moment), tracker_id=int(tracker), seq=int(seq))
    except ValueError:
        raise ApiError(422, "invalid", "after: pass the `next` of the previous page unchanged") from None
    if key.device_time.tzinfo is None or not (0 <= key.tracker_id <= MAX_ID and 0 <= key.seq <= MAX_ID):
        raise ApiError(422, "invalid", "after: pass the `next` of the previous page unchanged")
    return key


def _cursor(key: ReadingKey | None) -> str | None:
    if key is None:
        return None
    return f"{key.device_time.astimezone(UTC).isoformat()}_{key.tracker_id}_{key.seq}"


def _reading_out(found: ShipmentReading) -> ReadingOut:
    r = found.reading
    return ReadingOut(
        serial=found.serial,
        seq=r.seq,
        device_time=r.device_time,
        utc_offset_min=r.utc_offset_min,
        temperature_c=r.temperature_c,
        humidity_pct=r.humidity_pct,
        pressure_kpa=r.pressure_kpa,
        latitude=r.latitude,
        longitude=r.longitude,
        battery_pct=r.battery_pct,
    )


def _csv(rows: list[msgspec.Struct], fields: tuple[str, ...]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(fields)
    for row in rows:
        values = (getattr(row, name) for name in fields)
        writer.writerow("" if v is None else v.isoformat() if isinstance(v, datetime) else v for v in values)
    return out.getvalue()


@get(
    "/v1/board",
    summary="Every shipment in transit: last position and temperature, open alarms, ETA, state",
    tags=["portal"],
    security=BEARER,
    responses=errors(401),
)
async def board(store: StoreDep, principal: PrincipalDep, settings: SettingsDep, now: NowDep) -> BoardOut:
    """One call with a fixed number of database statements, however many shipments are on the road."""
    found = await use_cases.board(store, principal, now=now, silent_after=timedelta(seconds=settings.silent_tracker_s))
    return BoardOut(
        computed_at=found.computed_at,
        shipments=[
            BoardShipmentOut(
                shipment_id=line.entry.shipment_id,
                reference=line.entry.reference,
                state=line.state,
                organisation_id=line.entry.organisation_id,
                product_id=line.entry.product_id,
                product_name=line.entry.product_name,
                lot_id=line.entry.lot_id,
                lot_number=line.entry.lot_number,
                origin=PlaceOut(name=line.entry.origin.name, lat=line.entry.origin.lat, lon=line.entry.origin.lon),
                destination=PlaceOut(
                    name=line.entry.destination.name, lat=line.entry.destination.lat, lon=line.entry.destination.lon
                ),
                promised_at=line.entry.promised_at,
                priority=line.entry.priority,
                custodian_id=line.entry.custodian_id,
                custodian_name=line.entry.custodian_name,
                temperature_c=line.entry.temperature_c,
                temperature_at=line.entry.temperature_at,
                latitude=line.entry.latitude,
                longitude=line.entry.longitude,
                position_at=line.entry.position_at,
                open_alarms=line.entry.open_alarms,
                escalated_alarms=line.entry.escalated_alarms,
                late_alarms=line.entry.late_alarms,
                last_sync_at=line.entry.last_sync_at,
                eta_computed_at=line.entry.eta_computed_at,
                at_risk=line.entry.eta_at_risk,
                eta=line.eta,
                eta_reasons=line.eta_reasons,
            )
            for line in found.lines
        ],
    )


_READING_FIELDS = tuple(ReadingOut.__struct_fields__)
_BUCKET_FIELDS = tuple(ReadingBucket.__struct_fields__)


def moment(name: str, text: str | None) -> datetime | None:
    """A time of the query: RFC 3339 with its UTC offset (the pattern has checked the form), with a UTC form."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
        moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ApiError(422, "invalid", f"{name}: {text!r} is not a time with a UTC form (RFC 3339)") from None
    return moment


@get(
    "/v1/shipments/{shipment_id:int}/readings",
    summary="The shipment's readings for a time range: paged by key, JSON or CSV, or min/mean/max per bucket",
    tags=["portal"],
    security=BEARER,
    responses=errors(401, 404, 422),
)
async def shipment_readings(
    shipment_id: PathId,
    store: StoreDep,
    principal: PrincipalDep,
    now: NowDep,
    start: TimeQuery = None,
    end: TimeQuery = None,
    after: AfterQuery = None,
    limit: LimitQuery = 1000,
    resolution: ResolutionQuery = None,
    format: FormatQuery = "json",
) -> Response[ReadingsOut] | Response[str]:
    """Without ``start`` and ``end``: the whole shipment. With ``resolution`` (seconds) the answer has one bucket
    per interval with readings, aligned to the Unix epoch, and is never paged (at most 5,000 buckets). CSV pages
    carry the next page's key in the ``X-Next-After`` header."""
    start_at, end_at = moment("start", start), moment("end", end)
    if resolution is not None:
        if after is not None:
            raise ApiError(422, "invalid", "after: summarised answers are not paged")
        lower, upper, buckets = await use_cases.reading_buckets(
            store, principal, shipment_id, start=start_at, end=end_at, seconds=resolution, now=now
        )
        if format == "csv":
            return Response(_csv(list(buckets), _BUCKET_FIELDS), media_type="text/csv")
        return Response(
            ReadingsOut(start=lower, end=upper, resolution_s=resolution, readings=None, buckets=buckets, next=None)
        )
    key = parse_after(after)
    page = await use_cases.readings_page(
        store, principal, shipment_id, start=start_at, end=end_at, after=key, limit=limit, now=now
    )
    readings = [_reading_out(found) for found in page.readings]
    if format == "csv":
        headers = {} if page.next is None else {"X-Next-After": _cursor(page.next) or ""}
        return Response(_csv(list(readings), _READING_FIELDS), media_type="text/csv", headers=headers)
    lower = start_at or (readings[0].device_time if readings else now)
    return Response(
        ReadingsOut(
            start=lower,
            end=end_at or now,
            resolution_s=None,
            readings=readings,
            buckets=None,
            next=_cursor(page.next),
        )
    )


@get(
    "/v1/alarms",
    summary="The alarm inbox: unacknowledged alarms across the caller's shipments",
    tags=["portal"],
    security=BEARER,
    responses=errors(401, 422),
)
async def alarm_inbox(store: StoreDep, principal: PrincipalDep, limit: InboxLimit = 200) -> list[InboxAlarmOut]:
    """Escalated alarms first, then the most recently detected; withdrawn and acknowledged alarms are left out."""
    found = await use_cases.alarm_inbox(store, principal, limit=limit)
    return [
        InboxAlarmOut(shipment_id=item.alarm.shipment_id, reference=item.reference, alarm=alarm_out(item.alarm))
        for item in found
    ]
