"""Organisations and their API tokens.

The operator creates organisations and their first admin token; an organisation's admin issues and revokes the
organisation's other tokens. A token's text is in the answer to its creation only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, delete, get, post
from litestar.params import JSONBody
from msgspec import Meta

from coldchain.domain.access import ApiToken, Role
from coldchain.domain.parties import Organisation, OrganisationKind
from coldchain.http.deps import NowDep, PrincipalDep, StoreDep
from coldchain.http.openapi import BEARER, errors
from coldchain.http.wire import BodyIn, PathId
from coldchain.services import access

__all__ = ["OrganisationApi"]

Name = Annotated[str, Meta(min_length=1, max_length=200)]


class OrganisationIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: Name
    kind: OrganisationKind


class OrganisationOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    name: str
    kind: OrganisationKind
    created_at: datetime


class TokenIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    role: Role
    name: Name


class TokenOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    organisation_id: int
    role: Role
    name: str
    created_at: datetime
    revoked_at: datetime | None


class TokenCreatedOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    organisation_id: int
    role: Role
    name: str
    token: str
    """The bearer token: shown in this answer only, stored as its SHA-256."""


def _organisation_out(organisation: Organisation) -> OrganisationOut:
    return OrganisationOut(
        id=organisation.id, name=organisation.name, kind=organisation.kind, created_at=organisation.created_at
    )


def _token_out(token: ApiToken) -> TokenOut:
    return TokenOut(
        id=token.id,
        organisation_id=token.organisation_id,
        role=token.role,
        name=token.name,
        created_at=token.created_at,
        revoked_at=token.revoked_at,
    )


class OrganisationApi(Controller):
    path = "/v1/organisations"
    tags = ["organisations"]  # noqa: RUF012 (Litestar reads it as a class attribute)
    security = BEARER

    @post("/", status_code=201, summary="Create an organisation (operator only)", responses=errors(401, 403, 409, 422))
    async def create(
        self, data: JSONBody[OrganisationIn], store: StoreDep, principal: PrincipalDep, now: NowDep
    ) -> OrganisationOut:
        organisation = await access.create_organisation(store, principal, name=data.name, kind=data.kind, now=now)
        return _organisation_out(organisation)

    @get(
        "/",
        summary="Organisations the caller may see (all for the operator, its own otherwise)",
        responses=errors(401),
    )
    async def list_organisations(self, store: StoreDep, principal: PrincipalDep) -> list[OrganisationOut]:
        return [_organisation_out(o) for o in await access.list_organisations(store, principal)]

    @post(
        "/{organisation_id:int}/tokens",
        status_code=201,
        summary="Issue an API token; its text is shown once",
        responses=errors(401, 403, 404, 422),
    )
    async def issue_token(
        self,
        organisation_id: PathId,
        data: JSONBody[TokenIn],
        store: StoreDep,
        principal: PrincipalDep,
        now: NowDep,
    ) -> TokenCreatedOut:
        token, text = await access.issue_token(
            store, principal, organisation_id=organisation_id, role=data.role, name=data.name, now=now
        )
        return TokenCreatedOut(
            id=token.id, organisation_id=token.organisation_id, role=token.role, name=token.name, token=text
        )

    @get(
        "/{organisation_id:int}/tokens",
        summary="The organisation's tokens (never their text)",
        responses=errors(401, 403, 404),
    )
    async def list_tokens(self, organisation_id: PathId, store: StoreDep, principal: PrincipalDep) -> list[TokenOut]:
        return [_token_out(t) for t in await access.list_tokens(store, principal, organisation_id)]

    @delete(
        "/{organisation_id:int}/tokens/{token_id:int}",
        status_code=200,
        summary="Revoke a token",
        responses=errors(401, 403, 404, 409),
    )
    async def revoke_token(
        self,
        organisation_id: PathId,
        token_id: PathId,
        store: StoreDep,
        principal: PrincipalDep,
        now: NowDep,
    ) -> TokenOut:
        token = await access.revoke_token(store, principal, organisation_id=organisation_id, token_id=token_id, now=now)
        return _token_out(token)
