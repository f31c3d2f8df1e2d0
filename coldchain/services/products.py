"""Use cases around stability profiles, products and lots.

A profile is saved as a new version only when it changed: re-submitting the same profile returns the version
already held. A product may name a profile only once that profile exists; a lot belongs to an existing product.
Every create is written to the audit chain in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import msgspec

from coldchain.domain.access import Principal
from coldchain.domain.products import Lot, Product
from coldchain.domain.profiles import Profile, ProfileError, ProfileSyntaxError, load_profile, load_profiles
from coldchain.services.access import require
from coldchain.services.errors import Forbidden, Invalid, Malformed, NotFound
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


class UnknownProfile(Invalid):
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
    ``Invalid`` naming the path of the first problem (the domain's ``ProfileError``), ``Malformed`` for a document
    that is not JSON, ``AlreadyExists`` when a
    concurrent save took the version. The document's own ``version`` is ignored: the store numbers versions.
    """
    try:
        profile = load_profile(document)
    except ProfileSyntaxError as exc:
        raise Malformed(str(exc)) from None
    except ProfileError as exc:
        raise Invalid(str(exc)) from None
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


def _owner(principal: Principal, organisation_id: int | None) -> int:
    """The organisation a new product belongs to: the caller's own (the operator names it)."""
    require(principal, "setup")
    if principal.organisation_id is not None:
        if organisation_id not in (None, principal.organisation_id):
            raise Forbidden("a token creates products of its own organisation only")
        return principal.organisation_id
    if organisation_id is None:
        raise Invalid("organisation_id: the operator names the organisation of the product")
    return organisation_id


async def _own_product(tx: Transaction, principal: Principal, product_id: int) -> Product:
    product = await tx.get_product(product_id)
    if product is None or not principal.acts_for(product.organisation_id):
        raise NotFound(f"no product with id {product_id}")
    return product


async def create_product(
    store: Store,
    principal: Principal,
    *,
    organisation_id: int | None,
    name: str,
    gtin: str | None,
    profile_id: str | None,
    now: datetime,
) -> Product:
    """Raises ``UnknownOrganisation``, ``UnknownProfile``, or ``AlreadyExists`` for a name taken."""
    organisation_id = _owner(principal, organisation_id)
    actor = principal.actor
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


async def find_product(store: Store, principal: Principal, product_id: int) -> Product:
    """A product of the caller's organisation; :class:`NotFound` otherwise."""
    async with store.transaction() as tx:
        return await _own_product(tx, principal, product_id)


async def list_products(store: Store, principal: Principal, organisation_id: int | None = None) -> list[Product]:
    """The caller's organisation's products (the operator: one organisation's, or all)."""
    if principal.organisation_id is not None:
        organisation_id = principal.organisation_id
    async with store.transaction() as tx:
        return await tx.list_products(organisation_id)


async def create_lot(
    store: Store, principal: Principal, *, product_id: int, lot_number: str, expires_on: date | None, now: datetime
) -> Lot:
    """Raises :class:`NotFound` for a product not of the caller, ``AlreadyExists`` for a lot number taken."""
    require(principal, "setup")
    actor = principal.actor
    async with store.transaction() as tx:
        await _own_product(tx, principal, product_id)
        lot = await tx.create_lot(product_id=product_id, lot_number=lot_number, expires_on=expires_on, now=now)
        await tx.append_audit(
            actor=actor,
            action="lot.created",
            subject=f"lot:{lot.id}",
            detail=_detail({"product_id": product_id, "lot_number": lot_number, "expires_on": expires_on}),
            now=now,
        )
    return lot


async def list_lots(store: Store, principal: Principal, product_id: int) -> list[Lot]:
    """A product's lots; :class:`NotFound` for a product not of the caller."""
    async with store.transaction() as tx:
        await _own_product(tx, principal, product_id)
        return await tx.list_lots(product_id)
