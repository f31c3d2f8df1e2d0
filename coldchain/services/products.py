"""Use cases around stability profiles, products and lots.

A profile is saved as a new version only when it changed: re-submitting the same profile returns the version
already held. A product may name a profile only once that profile exists; a lot belongs to an existing product.
Every create is written to the audit chain in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import msgspec

from coldchain.domain.products import Lot, Product
from coldchain.domain.profiles import Profile, load_profile, load_profiles
from coldchain.services.trackers import UnknownOrganisation
from coldchain.storage import Store, Transaction

__all__ = [
    "UnknownProduct",
    "UnknownProfile",
    "create_lot",
    "create_product",
    "find_product",
    "find_profile",
    "list_lots",
    "list_products",
    "list_profiles",
    "load_example_profiles",
    "save_profile",
]


class UnknownProfile(LookupError):
    """The stability profile named does not exist."""


class UnknownProduct(LookupError):
    """The product named does not exist."""


def _detail(fields: dict[str, object]) -> str:
    return msgspec.json.encode(fields).decode()


async def _store_profiles(
    tx: Transaction, profiles: Sequence[Profile], *, actor: str, now: datetime
) -> list[tuple[Profile, bool]]:
    results = []
    for profile in profiles:
        stored, new = await tx.save_profile_version(profile, now=now)
        if new:
            await tx.append_audit(
                actor=actor,
                action="profile.saved",
                subject=f"profile:{stored.id}",
                detail=_detail({"id": stored.id, "version": stored.version, "name": stored.name}),
                now=now,
            )
        results.append((stored, new))
    return results


async def save_profile(store: Store, document: str | bytes, *, actor: str, now: datetime) -> tuple[Profile, bool]:
    """Validate one profile (JSON shaped like an entry of ``profiles.json``) and store it.

    Returns the profile as stored, with its version, and whether this call stored a new version. Raises
    ``ProfileError`` naming the path of the first problem. The document's own ``version`` is ignored: the store
    numbers versions.
    """
    profile = load_profile(document)
    async with store.transaction() as tx:
        [result] = await _store_profiles(tx, [profile], actor=actor, now=now)
    return result


async def load_example_profiles(
    store: Store, document: str | bytes, *, actor: str, now: datetime
) -> list[tuple[Profile, bool]]:
    """Store every profile of a ``profiles.json`` document, all or none, in one transaction."""
    profiles = load_profiles(document)
    async with store.transaction() as tx:
        return await _store_profiles(tx, profiles, actor=actor, now=now)


async def find_profile(store: Store, profile_id: str, version: int | None = None) -> Profile | None:
    """The latest version of a profile, or the given version; ``None`` when there is no such profile."""
    async with store.transaction() as tx:
        if version is None:
            return await tx.latest_profile(profile_id)
        return await tx.profile_version(profile_id, version)


async def list_profiles(store: Store) -> list[Profile]:
    async with store.transaction() as tx:
        return await tx.list_profiles()


async def create_product(
    store: Store,
    *,
    organisation_id: int,
    name: str,
    gtin: str | None,
    profile_id: str | None,
    actor: str,
    now: datetime,
) -> Product:
    """Raises ``UnknownOrganisation``, ``UnknownProfile``, or ``AlreadyExists`` for a name taken."""
    async with store.transaction() as tx:
        if await tx.get_organisation(organisation_id) is None:
            raise UnknownOrganisation(f"no organisation with id {organisation_id}")
        if profile_id is not None and await tx.latest_profile(profile_id) is None:
            raise UnknownProfile(f"no stability profile {profile_id!r}: save the profile before the product")
        product = await tx.create_product(
            organisation_id=organisation_id, name=name, gtin=gtin, profile_id=profile_id, now=now
        )
        await tx.append_audit(
            actor=actor,
            action="product.created",
            subject=f"product:{product.id}",
            detail=_detail({"organisation_id": organisation_id, "name": name, "gtin": gtin, "profile_id": profile_id}),
            now=now,
        )
    return product


async def find_product(store: Store, product_id: int) -> Product | None:
    async with store.transaction() as tx:
        return await tx.get_product(product_id)


async def list_products(store: Store, organisation_id: int | None = None) -> list[Product]:
    async with store.transaction() as tx:
        return await tx.list_products(organisation_id)


async def create_lot(
    store: Store, *, product_id: int, lot_number: str, expires_on: date | None, actor: str, now: datetime
) -> Lot:
    """Raises ``UnknownProduct``, or ``AlreadyExists`` when the product already has that lot number."""
    async with store.transaction() as tx:
        if await tx.get_product(product_id) is None:
            raise UnknownProduct(f"no product with id {product_id}")
        lot = await tx.create_lot(product_id=product_id, lot_number=lot_number, expires_on=expires_on, now=now)
        await tx.append_audit(
            actor=actor,
            action="lot.created",
            subject=f"lot:{lot.id}",
            detail=_detail({"product_id": product_id, "lot_number": lot_number, "expires_on": expires_on}),
            now=now,
        )
    return lot


async def list_lots(store: Store, product_id: int) -> list[Lot] | None:
    """A product's lots, or ``None`` for an unknown product."""
    async with store.transaction() as tx:
        if await tx.get_product(product_id) is None:
            return None
        return await tx.list_lots(product_id)
