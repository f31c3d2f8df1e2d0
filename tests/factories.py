"""Test data built through the storage contract: organisations, tokens, trackers, profiles, shipments."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime

from coldchain.domain.access import OPERATOR, Role
from coldchain.domain.parties import Organisation, OrganisationKind, Tracker
from coldchain.domain.profiles import Profile, load_profiles
from coldchain.domain.shipments import Assignment, Leg, Mode, Place, Priority, Shipment
from coldchain.services.access import issue_token
from coldchain.storage import Store
from tests.paths import EXAMPLE_PROFILES

__all__ = [
    "OPERATOR_HEADERS",
    "OPERATOR_TOKEN",
    "PROFILES_JSON",
    "assign",
    "bearer",
    "example_profile",
    "make_org",
    "make_shipment",
    "make_token",
    "make_tracker",
]

OPERATOR_TOKEN = "admin-token-for-tests"
OPERATOR_HEADERS = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
PROFILES_JSON = EXAMPLE_PROFILES
FRIDGE_PROFILE = "who-e006-tr06-fridge"  # 2-8 °C, the first of profiles.json

_names = itertools.count(1)
BERLIN = Place(name="Berlin hub", lat=52.52, lon=13.405)
MUNICH = Place(name="Munich pharmacy", lat=48.137, lon=11.575)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _now() -> datetime:
    return datetime.now(UTC)


async def make_org(store: Store, name: str | None = None, kind: OrganisationKind = "shipper") -> Organisation:
    async with store.transaction() as tx:
        return await tx.create_organisation(name=name or f"Organisation {next(_names)}", kind=kind, now=_now())


async def make_token(store: Store, organisation_id: int, role: Role = "admin") -> str:
    """A bearer token of the organisation with ``role`` (issued as the operator would)."""
    _, text = await issue_token(store, OPERATOR, organisation_id=organisation_id, role=role, name=role, now=_now())
    return text


async def make_tracker(store: Store, organisation_id: int | None, serial: str | None = None) -> Tracker:
    async with store.transaction() as tx:
        return await tx.create_tracker(
            serial=serial or f"TRK-{next(_names):05d}",
            secret="secret",
            organisation_id=organisation_id,
            model=None,
            now=_now(),
        )


async def example_profile(store: Store, profile_id: str = FRIDGE_PROFILE) -> Profile:
    """A profile of ``profiles.json``, stored (an unchanged profile keeps its version)."""
    profile = next(p for p in load_profiles(PROFILES_JSON.read_text(encoding="utf-8")) if p.id == profile_id)
    async with store.transaction() as tx:
        stored, _ = await tx.save_profile_version(profile, now=_now())
    return stored


async def make_shipment(
    store: Store,
    *,
    owner: int,
    carriers: Sequence[int] = (),
    receiver: int | None = None,
    profile_id: str = FRIDGE_PROFILE,
    lot_number: str | None = "LOT-1",
    modes: Sequence[Mode] | None = None,
    origin: Place = BERLIN,
    destination: Place = MUNICH,
    waypoints: Sequence[tuple[float, float]] = ((50.98, 11.03),),
    promised_at: datetime | None = None,
    priority: Priority = "standard",
    geofence_m: float = 500.0,
    reference: str | None = None,
) -> Shipment:
    """A planned shipment of a new product (and lot) of ``owner``, one leg per carrier."""
    profile = await example_profile(store, profile_id)
    now = _now()
    async with store.transaction() as tx:
        product = await tx.create_product(
            organisation_id=owner, name=f"Product {next(_names)}", gtin=None, profile_id=profile.id, now=now
        )
        lot = None
        if lot_number is not None:
            lot = await tx.create_lot(product_id=product.id, lot_number=lot_number, expires_on=None, now=now)
        legs = [
            Leg(leg_no=number, carrier_id=carrier, mode=(modes[number - 1] if modes else "road"))
            for number, carrier in enumerate(carriers, start=1)
        ]
        return await tx.create_shipment(
            organisation_id=owner,
            reference=reference or f"SHP-{next(_names):05d}",
            product_id=product.id,
            lot_id=None if lot is None else lot.id,
            quantity=10,
            profile=profile,
            origin=origin,
            destination=destination,
            waypoints=waypoints,
            geofence_m=geofence_m,
            legs=legs,
            receiver_id=receiver,
            promised_at=promised_at,
            priority=priority,
            now=now,
        )


async def assign(
    store: Store, shipment_id: int, tracker_id: int, starts_at: datetime, ends_at: datetime | None = None
) -> Assignment:
    async with store.transaction() as tx:
        return await tx.assign_tracker(
            shipment_id=shipment_id, tracker_id=tracker_id, starts_at=starts_at, ends_at=ends_at, now=_now()
        )
