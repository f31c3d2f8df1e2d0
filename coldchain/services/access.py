"""Use cases of tenancy: organisations, API tokens, and who the caller is.

Every shipment-scoped use case starts with :func:`visible_shipment`: a shipment the caller takes no part in
answers :class:`NotFound`, exactly like a shipment that does not exist.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import datetime

import msgspec

from coldchain.domain.access import OPERATOR, Action, ApiToken, Principal, Role, allowed, token_sha256
from coldchain.domain.parties import Organisation, OrganisationKind
from coldchain.domain.shipments import Shipment
from coldchain.domain.users import has_an_admin
from coldchain.services.errors import Conflict, Forbidden, NotFound
from coldchain.storage import Store, Transaction

__all__ = [
    "TOKEN_PREFIX",
    "authenticate",
    "create_organisation",
    "issue_token",
    "list_organisations",
    "list_tokens",
    "require",
    "revoke_token",
    "visible_shipment",
]

TOKEN_PREFIX = "cct_"


def require(principal: Principal, action: Action) -> None:
    """Raise :class:`Forbidden` unless the caller's role grants ``action``."""
    if not allowed(principal, action):
        raise Forbidden(f"the {principal.role} role may not {action} here")


async def visible_shipment(tx: Transaction, principal: Principal, shipment_id: int) -> Shipment:
    """The shipment, when the caller takes part in it; :class:`NotFound` otherwise."""
    shipment = await tx.get_shipment(shipment_id)
    if shipment is None or not principal.sees(shipment.parties):
        raise NotFound(f"no shipment {shipment_id}")
    return shipment


async def authenticate(store: Store, token: str, *, operator_token: str | None) -> Principal | None:
    """The caller a bearer token names, or ``None`` for an unknown or revoked token."""
    if operator_token is not None and hmac.compare_digest(token.encode(), operator_token.encode()):
        return OPERATOR
    if not token.startswith(TOKEN_PREFIX):
        return None
    async with store.transaction() as tx:
        stored = await tx.api_token(token_sha256(token))
    if stored is None or stored.revoked_at is not None:
        return None
    return Principal(organisation_id=stored.organisation_id, role=stored.role, token_id=stored.id)


async def create_organisation(
    store: Store, principal: Principal, *, name: str, kind: OrganisationKind, now: datetime
) -> Organisation:
    """Only the operator creates organisations. :class:`~coldchain.storage.AlreadyExists` for a taken name."""
    if not principal.is_operator:
        raise Forbidden("only the platform operator creates organisations")
    async with store.transaction() as tx:
        organisation = await tx.create_organisation(name=name, kind=kind, now=now)
        detail = msgspec.json.encode({"name": name, "kind": kind}).decode()
        await tx.append_audit(
            actor=principal.actor,
            action="organisation.created",
            subject=f"organisation:{organisation.id}",
            detail=detail,
            now=now,
        )
    return organisation


async def list_organisations(store: Store, principal: Principal) -> list[Organisation]:
    """Every organisation for the operator; otherwise the caller's own (names of other tenants stay private)."""
    async with store.transaction() as tx:
        if principal.organisation_id is None:
            return await tx.list_organisations()
        own = await tx.get_organisation(principal.organisation_id)
    return [] if own is None else [own]


def _check_manages(principal: Principal, organisation_id: int) -> None:
    if not principal.acts_for(organisation_id):
        raise NotFound(f"no organisation {organisation_id}")
    require(principal, "manage")


async def issue_token(
    store: Store, principal: Principal, *, organisation_id: int, role: Role, name: str, now: datetime
) -> tuple[ApiToken, str]:
    """A new token of ``organisation_id``; its text is returned here once and only its digest is stored."""
    _check_manages(principal, organisation_id)
    text = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with store.transaction() as tx:
        if await tx.get_organisation(organisation_id) is None:
            raise NotFound(f"no organisation {organisation_id}")
        token = await tx.create_api_token(
            organisation_id=organisation_id, role=role, name=name, token_sha256=token_sha256(text), now=now
        )
        detail = msgspec.json.encode({"role": role, "name": name}).decode()
        await tx.append_audit(
            actor=principal.actor, action="token.issued", subject=f"token:{token.id}", detail=detail, now=now
        )
    return token, text


async def list_tokens(store: Store, principal: Principal, organisation_id: int) -> list[ApiToken]:
    _check_manages(principal, organisation_id)
    async with store.transaction() as tx:
        return await tx.api_tokens(organisation_id)


async def revoke_token(
    store: Store, principal: Principal, *, organisation_id: int, token_id: int, now: datetime
) -> ApiToken:
    _check_manages(principal, organisation_id)
    async with store.transaction() as tx:
        await tx.lock_api_tokens(organisation_id)  # two admins revoking each other's access at once: one waits
        tokens = await tx.api_tokens(organisation_id)
        target = next((t for t in tokens if t.id == token_id), None)
        if target is None:
            raise NotFound(f"organisation {organisation_id} has no token {token_id}")
        others = [t for t in tokens if t.id != token_id]
        if target.revoked_at is None and target.role == "admin":
            users = await tx.users_of_organisation(organisation_id)
            if not has_an_admin(others, users):
                raise Conflict(
                    f"token {token_id} is the last admin token of organisation {organisation_id}, which has no active"
                    " admin user: revoking it would lock the organisation out of its own settings; issue another"
                    " admin token or add an admin user first"
                )
        token = await tx.revoke_api_token(organisation_id, token_id, now=now)
        if token is None:
            raise NotFound(f"organisation {organisation_id} has no token {token_id}")
        await tx.append_audit(
            actor=principal.actor, action="token.revoked", subject=f"token:{token_id}", detail="{}", now=now
        )
    return token
