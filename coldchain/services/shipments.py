"""Use cases of shipments: create, read, move through the lifecycle, assign trackers.

The shipper (the shipment's ``organisation_id``) sets a shipment up and changes it; carriers of its legs and
its receiver see it; nobody else does (404). A shipment pins the latest version of its product's stability
profile when it is created.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from coldchain.domain.access import Principal
from coldchain.domain.shipments import (
    Assignment,
    InvalidTransition,
    Leg,
    Place,
    Priority,
    Shipment,
    ShipmentStatus,
    check_transition,
    overlaps,
)
from coldchain.services.access import require, visible_shipment
from coldchain.services.decisions import tell_decision_needed
from coldchain.services.errors import Conflict, Forbidden, Invalid, NotFound
from coldchain.storage import Store, Transaction

__all__ = [
    "ShipmentDraft",
    "assign_tracker",
    "change_status",
    "create_shipment",
    "end_assignment",
    "get_shipment",
    "list_assignments",
    "list_shipments",
]


class ShipmentDraft(msgspec.Struct, frozen=True, kw_only=True):
    """What a shipment is created from (validated for shape at the edge, for meaning here)."""

    reference: str
    product_id: int
    lot_id: int | None
    quantity: int
    origin: Place
    destination: Place
    waypoints: list[tuple[float, float]]
    legs: list[Leg]
    receiver_id: int | None
    promised_at: datetime | None
    priority: Priority
    geofence_m: float


def _detail(fields: dict[str, object]) -> str:
    return msgspec.json.encode(fields).decode()


def _owner_of_new(principal: Principal, organisation_id: int | None) -> int:
    require(principal, "setup")
    if principal.organisation_id is not None:
        if organisation_id is not None and organisation_id != principal.organisation_id:
            raise Forbidden("a token creates shipments of its own organisation only")
        return principal.organisation_id
    if organisation_id is None:
        raise Invalid("organisation_id: the operator names the shipper organisation")
    return organisation_id


async def create_shipment(
    store: Store, principal: Principal, draft: ShipmentDraft, *, organisation_id: int | None, now: datetime
) -> Shipment:
    """Create a planned shipment of the caller's organisation (the operator names it)."""
    owner = _owner_of_new(principal, organisation_id)
    numbers = [leg.leg_no for leg in draft.legs]
    if numbers != list(range(1, len(numbers) + 1)):
        raise Invalid(f"legs: number them 1, 2, 3, ... in order, got {numbers}")
    async with store.transaction() as tx:
        if await tx.get_organisation(owner) is None:
            raise Invalid(f"organisation_id: no organisation {owner}")
        product = await tx.get_product(draft.product_id)
        if product is None or product.organisation_id != owner:
            raise Invalid(f"product_id: organisation {owner} has no product {draft.product_id}")
        if draft.lot_id is not None:
            lot = await tx.get_lot(draft.lot_id)
            if lot is None or lot.product_id != product.id:
                raise Invalid(f"lot_id: product {product.id} has no lot {draft.lot_id}")
        if product.profile_id is None:
            raise Invalid(f"product_id: product {product.id} has no stability profile to judge the shipment by")
        profile = await tx.latest_profile(product.profile_id)
        if profile is None:
            raise Invalid(f"product_id: the profile {product.profile_id!r} of product {product.id} is not stored")
        for where, party in [*((f"legs[{leg.leg_no - 1}].carrier_id", leg.carrier_id) for leg in draft.legs),
                             ("receiver_id", draft.receiver_id)]:  # fmt: skip
            if party is not None and await tx.get_organisation(party) is None:
                raise Invalid(f"{where}: no organisation {party}")
        shipment = await tx.create_shipment(
            organisation_id=owner,
            reference=draft.reference,
            product_id=product.id,
            lot_id=draft.lot_id,
            quantity=draft.quantity,
            profile=profile,
            origin=draft.origin,
            destination=draft.destination,
            waypoints=draft.waypoints,
            geofence_m=draft.geofence_m,
            legs=draft.legs,
            receiver_id=draft.receiver_id,
            promised_at=draft.promised_at,
            priority=draft.priority,
            now=now,
        )
        await tx.append_audit(
            actor=principal.actor,
            action="shipment.created",
            subject=f"shipment:{shipment.id}",
            detail=_detail(
                {"reference": shipment.reference, "profile": f"{profile.id}@{profile.version}", "owner": owner}
            ),
            now=now,
        )
    return shipment


async def get_shipment(store: Store, principal: Principal, shipment_id: int) -> Shipment:
    async with store.transaction() as tx:
        return await visible_shipment(tx, principal, shipment_id)


async def list_shipments(store: Store, principal: Principal, *, status: ShipmentStatus | None = None) -> list[Shipment]:
    """The shipments the caller takes part in (all for the operator), by id."""
    async with store.transaction() as tx:
        ids = await tx.shipment_ids(party=principal.organisation_id, status=status)
        shipments = [await tx.get_shipment(shipment_id) for shipment_id in ids]
    return [shipment for shipment in shipments if shipment is not None]


async def _owned_shipment(tx: Transaction, principal: Principal, shipment_id: int) -> Shipment:
    """The shipment, for a change only its shipper (or the operator) may make."""
    shipment = await visible_shipment(tx, principal, shipment_id)
    require(principal, "setup")
    if not principal.acts_for(shipment.organisation_id):
        raise Forbidden(f"only the shipper of shipment {shipment_id} may change it")
    return shipment


async def change_status(
    store: Store, principal: Principal, shipment_id: int, target: ShipmentStatus, *, now: datetime
) -> Shipment:
    """Move the shipment through its lifecycle (:data:`~coldchain.domain.shipments.TRANSITIONS`)."""
    async with store.transaction() as tx:
        shipment = await _owned_shipment(tx, principal, shipment_id)
        try:
            check_transition(shipment.status, target)
        except InvalidTransition as exc:
            raise Conflict(str(exc)) from None
        await tx.set_shipment_status(shipment_id, target, now=now)
        await tx.append_audit(
            actor=principal.actor,
            action="shipment.status",
            subject=f"shipment:{shipment_id}",
            detail=_detail({"from": shipment.status, "to": target}),
            now=now,
        )
        changed = await tx.get_shipment(shipment_id)
        assert changed is not None
        if target == "delivered":
            await tell_decision_needed(tx, changed, now=now)
    return changed


async def assign_tracker(
    store: Store,
    principal: Principal,
    shipment_id: int,
    *,
    serial: str,
    starts_at: datetime,
    ends_at: datetime | None,
    now: datetime,
) -> Assignment:
    """Assign a tracker of one of the shipment's parties for ``[starts_at, ends_at)``.

    A tracker watches one shipment at a time: a range meeting another assignment of the tracker is refused
    (409). The tracker's sync state is locked meanwhile, so a batch being ingested sees the assignment whole or
    not at all.
    """
    if ends_at is not None and ends_at <= starts_at:
        raise Invalid("ends_at: must be after starts_at")
    async with store.transaction() as tx:
        shipment = await _owned_shipment(tx, principal, shipment_id)
        if shipment.status in ("closed", "cancelled"):
            raise Conflict(f"shipment {shipment_id} is {shipment.status}: no tracker can be assigned")
        tracker = await tx.get_tracker(serial)
        if tracker is None or tracker.organisation_id not in shipment.parties:
            raise Invalid(f"serial: no tracker {serial!r} of this shipment's parties")
        await tx.sync_state(tracker.id)  # lock: serialise with the tracker's ingest
        clash = overlaps(starts_at, ends_at, await tx.assignments_of_tracker(tracker.id))
        if clash is not None:
            raise Conflict(
                f"tracker {serial!r} is assigned to shipment {clash.shipment_id} from {clash.starts_at.isoformat()}"
                f" until {'further notice' if clash.ends_at is None else clash.ends_at.isoformat()}"
            )
        assignment = await tx.assign_tracker(
            shipment_id=shipment_id, tracker_id=tracker.id, starts_at=starts_at, ends_at=ends_at, now=now
        )
        await tx.append_audit(
            actor=principal.actor,
            action="tracker.assigned",
            subject=f"shipment:{shipment_id}",
            detail=_detail({"tracker": serial, "starts_at": starts_at, "ends_at": ends_at}),
            now=now,
        )
    return assignment


async def end_assignment(
    store: Store, principal: Principal, shipment_id: int, assignment_id: int, *, ends_at: datetime, now: datetime
) -> Assignment:
    """Close an open assignment at ``ends_at`` (after its start)."""
    async with store.transaction() as tx:
        await _owned_shipment(tx, principal, shipment_id)
        assignment = next((a for a in await tx.assignments_of_shipment(shipment_id) if a.id == assignment_id), None)
        if assignment is None:
            raise NotFound(f"shipment {shipment_id} has no tracker assignment {assignment_id}")
        if assignment.ends_at is not None:
            raise Conflict(f"assignment {assignment_id} already ended at {assignment.ends_at.isoformat()}")
        if ends_at <= assignment.starts_at:
            raise Invalid("ends_at: must be after the assignment's start")
        await tx.sync_state(assignment.tracker_id)
        await tx.end_assignment(assignment_id, ends_at)
        await tx.append_audit(
            actor=principal.actor,
            action="tracker.unassigned",
            subject=f"shipment:{shipment_id}",
            detail=_detail({"assignment": assignment_id, "ends_at": ends_at}),
            now=now,
        )
    return msgspec.structs.replace(assignment, ends_at=ends_at)


async def list_assignments(store: Store, principal: Principal, shipment_id: int) -> list[tuple[Assignment, str]]:
    """The shipment's tracker assignments with each tracker's serial, by start."""
    async with store.transaction() as tx:
        await visible_shipment(tx, principal, shipment_id)
        listed = []
        for assignment in await tx.assignments_of_shipment(shipment_id):
            tracker = await tx.get_tracker_by_id(assignment.tracker_id)
            listed.append((assignment, "" if tracker is None else tracker.serial))
    return listed
