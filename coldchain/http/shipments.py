"""The shipments API: create, list, read, change status, assign trackers.

Every route is scoped to the caller: a shipment the caller's organisation takes no part in answers 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.params import FromQuery, JSONBody
from msgspec import Meta

from coldchain.domain.shipments import Assignment, Leg, Mode, Place, Priority, Shipment, ShipmentStatus
from coldchain.http.deps import NowDep, PrincipalDep, StoreDep
from coldchain.http.openapi import BEARER, BUSY, errors
from coldchain.http.wire import AwareDatetime, BodyIn, Id, Latitude, Longitude, PathId
from coldchain.services import shipments as use_cases
from coldchain.services.eta import ShipmentEta, shipment_eta

__all__ = ["ShipmentApi"]

Text = Annotated[str, Meta(min_length=1, max_length=200)]
Reference = Annotated[str, Meta(min_length=1, max_length=64)]


class PlaceIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Text
    lat: Latitude
    lon: Longitude


class LegIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    carrier_id: Id
    mode: Mode


class ShipmentIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    reference: Reference
    product_id: Id
    lot_id: Id | None = None
    quantity: Annotated[int, Meta(ge=1, le=10_000_000)]
    origin: PlaceIn
    destination: PlaceIn
    waypoints: Annotated[list[tuple[Latitude, Longitude]], Meta(max_length=500)] = msgspec.field(default_factory=list)
    legs: Annotated[list[LegIn], Meta(max_length=20)] = msgspec.field(default_factory=list)
    receiver_id: Id | None = None
    promised_at: AwareDatetime | None = None
    priority: Priority = "standard"
    geofence_m: Annotated[float, Meta(gt=0, le=100_000)] = 500.0
    organisation_id: Id | None = None
    """The shipper: the caller's own organisation (the operator must name it)."""


class PlaceOut(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    lat: float
    lon: float


class LegOut(msgspec.Struct, frozen=True, kw_only=True):
    leg_no: int
    carrier_id: int
    mode: Mode


class ShipmentOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    organisation_id: int
    reference: str
    product_id: int
    lot_id: int | None
    quantity: int
    profile_id: str
    profile_version: int
    origin: PlaceOut
    destination: PlaceOut
    waypoints: list[tuple[float, float]]
    legs: list[LegOut]
    receiver_id: int | None
    promised_at: datetime | None
    priority: Priority
    geofence_m: float
    status: ShipmentStatus
    created_at: datetime
    updated_at: datetime


class StatusIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    status: ShipmentStatus


class AssignmentIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    serial: Annotated[str, Meta(min_length=1, max_length=64)]
    starts_at: AwareDatetime | None = None
    """Default: now."""
    ends_at: AwareDatetime | None = None


class AssignmentEndIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    ends_at: AwareDatetime | None = None
    """Default: now."""


class AssignmentOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    shipment_id: int
    serial: str
    starts_at: datetime
    ends_at: datetime | None


def _place(place: Place) -> PlaceOut:
    return PlaceOut(name=place.name, lat=place.lat, lon=place.lon)


def shipment_out(shipment: Shipment) -> ShipmentOut:
    return ShipmentOut(
        id=shipment.id,
        organisation_id=shipment.organisation_id,
        reference=shipment.reference,
        product_id=shipment.product_id,
        lot_id=shipment.lot_id,
        quantity=shipment.quantity,
        profile_id=shipment.profile_id,
        profile_version=shipment.profile_version,
        origin=_place(shipment.origin),
        destination=_place(shipment.destination),
        waypoints=shipment.waypoints,
        legs=[LegOut(leg_no=leg.leg_no, carrier_id=leg.carrier_id, mode=leg.mode) for leg in shipment.legs],
        receiver_id=shipment.receiver_id,
        promised_at=shipment.promised_at,
        priority=shipment.priority,
        geofence_m=shipment.geofence_m,
        status=shipment.status,
        created_at=shipment.created_at,
        updated_at=shipment.updated_at,
    )


def _assignment_out(assignment: Assignment, serial: str) -> AssignmentOut:
    return AssignmentOut(
        id=assignment.id,
        shipment_id=assignment.shipment_id,
        serial=serial,
        starts_at=assignment.starts_at,
        ends_at=assignment.ends_at,
    )


def _or_now(value: datetime | None, now: datetime) -> datetime:
    return now if value is None else value.astimezone(UTC)


class ShipmentApi(Controller):
    path = "/v1/shipments"
    tags = ["shipments"]  # noqa: RUF012 (Litestar reads it as a class attribute)
    security = BEARER

    @post(
        "/",
        status_code=201,
        summary="Create a planned shipment (pins the product's current profile version)",
        responses=errors(401, 403, 409, 422),
    )
    async def create(
        self, data: JSONBody[ShipmentIn], store: StoreDep, principal: PrincipalDep, now: NowDep
    ) -> ShipmentOut:
        draft = use_cases.ShipmentDraft(
            reference=data.reference,
            product_id=data.product_id,
            lot_id=data.lot_id,
            quantity=data.quantity,
            origin=Place(name=data.origin.name, lat=data.origin.lat, lon=data.origin.lon),
            destination=Place(name=data.destination.name, lat=data.destination.lat, lon=data.destination.lon),
            waypoints=list(data.waypoints),
            legs=[Leg(leg_no=n, carrier_id=leg.carrier_id, mode=leg.mode) for n, leg in enumerate(data.legs, 1)],
            receiver_id=data.receiver_id,
            promised_at=None if data.promised_at is None else data.promised_at.astimezone(UTC),
            priority=data.priority,
            geofence_m=data.geofence_m,
        )
        shipment = await use_cases.create_shipment(
            store, principal, draft, organisation_id=data.organisation_id, now=now
        )
        return shipment_out(shipment)

    @get(
        "/",
        summary="The shipments the caller takes part in",
        responses=errors(401, 422),
    )
    async def list_shipments(
        self, store: StoreDep, principal: PrincipalDep, status: FromQuery[ShipmentStatus | None] = None
    ) -> list[ShipmentOut]:
        return [shipment_out(s) for s in await use_cases.list_shipments(store, principal, status=status)]

    @get(
        "/{shipment_id:int}",
        summary="One shipment",
        responses=errors(401, 404),
    )
    async def show(self, shipment_id: PathId, store: StoreDep, principal: PrincipalDep) -> ShipmentOut:
        return shipment_out(await use_cases.get_shipment(store, principal, shipment_id))

    @post(
        "/{shipment_id:int}/status",
        status_code=200,
        summary="Move the shipment through its lifecycle",
        responses=errors(401, 403, 404, 409, 422, 503, why={503: BUSY}),
    )
    async def change_status(
        self,
        shipment_id: PathId,
        data: JSONBody[StatusIn],
        store: StoreDep,
        principal: PrincipalDep,
        now: NowDep,
    ) -> ShipmentOut:
        shipment = await use_cases.change_status(store, principal, shipment_id, data.status, now=now)
        return shipment_out(shipment)

    @post(
        "/{shipment_id:int}/trackers",
        status_code=201,
        summary="Assign a tracker for a time range",
        responses=errors(401, 403, 404, 409, 422),
    )
    async def assign(
        self,
        shipment_id: PathId,
        data: JSONBody[AssignmentIn],
        store: StoreDep,
        principal: PrincipalDep,
        now: NowDep,
    ) -> AssignmentOut:
        assignment = await use_cases.assign_tracker(
            store,
            principal,
            shipment_id,
            serial=data.serial,
            starts_at=_or_now(data.starts_at, now),
            ends_at=None if data.ends_at is None else data.ends_at.astimezone(UTC),
            now=now,
        )
        return _assignment_out(assignment, data.serial)

    @get(
        "/{shipment_id:int}/trackers",
        summary="The shipment's tracker assignments",
        responses=errors(401, 404),
    )
    async def assignments(self, shipment_id: PathId, store: StoreDep, principal: PrincipalDep) -> list[AssignmentOut]:
        listed = await use_cases.list_assignments(store, principal, shipment_id)
        return [_assignment_out(assignment, serial) for assignment, serial in listed]

    @post(
        "/{shipment_id:int}/trackers/{assignment_id:int}/end",
        status_code=200,
        summary="End an assignment",
        responses=errors(401, 403, 404, 409, 422),
    )
    async def end_assignment(
        self,
        shipment_id: PathId,
        assignment_id: PathId,
        data: JSONBody[AssignmentEndIn],
        store: StoreDep,
        principal: PrincipalDep,
        now: NowDep,
    ) -> AssignmentOut:
        assignment = await use_cases.end_assignment(
            store, principal, shipment_id, assignment_id, ends_at=_or_now(data.ends_at, now), now=now
        )
        listed = await use_cases.list_assignments(store, principal, shipment_id)
        serial = next((s for a, s in listed if a.id == assignment.id), "")
        return _assignment_out(assignment, serial)

    @get(
        "/{shipment_id:int}/eta",
        summary="Arrival estimate now: remaining route, robust speed, bounds, at-risk",
        responses=errors(401, 404),
    )
    async def eta(self, shipment_id: PathId, store: StoreDep, principal: PrincipalDep, now: NowDep) -> ShipmentEta:
        return await shipment_eta(store, principal, shipment_id, now=now)
