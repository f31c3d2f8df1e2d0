"""The admin API of stability profiles, products and lots.

``POST /v1/profiles`` takes one profile in the shape of an entry of ``profiles.json``; the body is validated by
the domain (:func:`~coldchain.domain.profiles.load_profile`) so a 422 names the path of the problem exactly as
``ProfileError`` does. A changed profile becomes the next version; an unchanged one keeps its version (200).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, PathParameter
from msgspec import Meta

from coldchain.domain.products import Lot, Product
from coldchain.domain.profiles import Profile
from coldchain.http.deps import NowDep, PrincipalDep, StoreDep
from coldchain.http.errors import ApiError
from coldchain.http.openapi import BEARER, errors
from coldchain.http.wire import BodyIn, Id, PathId, QueryId
from coldchain.services import products as use_cases

__all__ = ["LotIn", "LotOut", "ProductAdmin", "ProductIn", "ProductOut", "ProfileAdmin", "ProfileSavedOut"]

Name = Annotated[str, Meta(min_length=1, max_length=200)]
Gtin = Annotated[str, Meta(pattern=r"^\d{8}$|^\d{12,14}$")]  # GTIN-8, -12, -13 or -14 (GS1 General Specifications)
ProfileId = Annotated[str, Meta(min_length=1, max_length=128)]
LotNumber = Annotated[str, Meta(min_length=1, max_length=64)]
Version = Annotated[int, PathParameter(ge=1, le=2**31 - 1)]
"""A profile version (a 32-bit column)."""


class ProfileSavedOut(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    version: int
    new: bool
    """Whether this request stored a new version (false: the latest version already held this profile)."""


class ProductIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    organisation_id: Id | None = None
    """The caller's own organisation (the operator must name it)."""
    name: Name
    gtin: Gtin | None = None
    profile_id: ProfileId | None = None


class ProductOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    organisation_id: int
    name: str
    gtin: str | None
    profile_id: str | None
    created_at: datetime


class LotIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    lot_number: LotNumber
    expires_on: date | None = None


class LotOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    product_id: int
    lot_number: str
    expires_on: date | None
    created_at: datetime


def _product_out(product: Product) -> ProductOut:
    return ProductOut(
        id=product.id,
        organisation_id=product.organisation_id,
        name=product.name,
        gtin=product.gtin,
        profile_id=product.profile_id,
        created_at=product.created_at,
    )


def _lot_out(lot: Lot) -> LotOut:
    return LotOut(
        id=lot.id, product_id=lot.product_id, lot_number=lot.lot_number, expires_on=lot.expires_on,
        created_at=lot.created_at,
    )  # fmt: skip


class ProfileAdmin(Controller):
    """Stability profiles are shared reference data: every caller reads them, the operator writes them."""

    path = "/v1/profiles"
    tags = ["profiles"]  # noqa: RUF012 (Litestar reads it as a class attribute)
    security = BEARER

    @post(
        "/",
        summary="Save a stability profile (operator); a changed profile becomes its next version",
        status_code=201,
        responses={
            200: ResponseSpec(ProfileSavedOut, description="The latest version already held this profile."),
            **errors(401, 403, 409, 413, 422),
        },
    )
    async def save(
        self, request: Request[Any, Any, Any], store: StoreDep, principal: PrincipalDep, now: NowDep
    ) -> Response[ProfileSavedOut]:
        if not principal.is_operator:
            raise ApiError(403, "forbidden", "stability profiles are shared by every tenant: the operator saves them")
        profile, new = await use_cases.save_profile(store, await request.body(), actor="admin", now=now)
        saved = ProfileSavedOut(id=profile.id, version=profile.version, new=new)
        return Response(saved, status_code=201 if new else 200)

    @get(
        "/",
        summary="The latest version of every stability profile",
        responses=errors(401),
    )
    async def list_profiles(self, store: StoreDep, principal: PrincipalDep) -> list[Profile]:
        return await use_cases.list_profiles(store)

    @get(
        "/{profile_id:str}",
        summary="The latest version of one stability profile",
        responses=errors(401, 404),
    )
    async def latest(self, profile_id: FromPath[str], store: StoreDep, principal: PrincipalDep) -> Profile:
        profile = await use_cases.find_profile(store, profile_id)
        if profile is None:
            raise ApiError(404, "not_found", f"no stability profile {profile_id!r}")
        return profile

    @get(
        "/{profile_id:str}/versions/{version:int}",
        summary="One version of a stability profile",
        responses=errors(401, 404),
    )
    async def version(
        self, profile_id: FromPath[str], version: Version, store: StoreDep, principal: PrincipalDep
    ) -> Profile:
        profile = await use_cases.find_profile(store, profile_id, version)
        if profile is None:
            raise ApiError(404, "not_found", f"no version {version} of stability profile {profile_id!r}")
        return profile


class ProductAdmin(Controller):
    """Products and lots of the caller's organisation (the operator: of any)."""

    path = "/v1/products"
    tags = ["products"]  # noqa: RUF012 (Litestar reads it as a class attribute)
    security = BEARER

    @post(
        "/",
        status_code=201,
        summary="Create a product, naming its stability profile",
        responses=errors(401, 403, 409, 422),
    )
    async def create(
        self, data: JSONBody[ProductIn], store: StoreDep, principal: PrincipalDep, now: NowDep
    ) -> ProductOut:
        product = await use_cases.create_product(
            store,
            principal,
            organisation_id=data.organisation_id,
            name=data.name,
            gtin=data.gtin,
            profile_id=data.profile_id,
            now=now,
        )
        return _product_out(product)

    @get(
        "/",
        summary="Products of the caller's organisation (the operator: of one organisation, or all)",
        responses=errors(401, 403, 422),
    )
    async def list_products(
        self, store: StoreDep, principal: PrincipalDep, organisation_id: QueryId = None
    ) -> list[ProductOut]:
        return [_product_out(p) for p in await use_cases.list_products(store, principal, organisation_id)]

    @get(
        "/{product_id:int}",
        summary="One product",
        responses=errors(401, 404),
    )
    async def show(self, product_id: PathId, store: StoreDep, principal: PrincipalDep) -> ProductOut:
        return _product_out(await use_cases.find_product(store, principal, product_id))

    @post(
        "/{product_id:int}/lots",
        status_code=201,
        summary="Create a lot of a product",
        responses=errors(401, 403, 404, 409, 422),
    )
    async def create_lot(
        self, product_id: PathId, data: JSONBody[LotIn], store: StoreDep, principal: PrincipalDep, now: NowDep
    ) -> LotOut:
        lot = await use_cases.create_lot(
            store,
            principal,
            product_id=product_id,
            lot_number=data.lot_number,
            expires_on=data.expires_on,
            now=now,
        )
        return _lot_out(lot)

    @get(
        "/{product_id:int}/lots",
        summary="The lots of a product",
        responses=errors(401, 404),
    )
    async def lots(self, product_id: PathId, store: StoreDep, principal: PrincipalDep) -> list[LotOut]:
        return [_lot_out(lot) for lot in await use_cases.list_lots(store, principal, product_id)]
