"""Who may do what: API tokens scoped to one organisation with a role, and the rules that scope every query.

The platform operator (the bootstrap token of the deployment) acts for no organisation and may do everything;
every other caller holds a token of one organisation with one role:

============  =======================================================================================
role          may
============  =======================================================================================
admin         everything its organisation may, plus manage the organisation's tokens and webhooks
logistics     set up products, lots, trackers and shipments; record custody; acknowledge alarms
pharmacist    read; acknowledge alarms; decide and sign dispositions (a person, signed in: never a token)
carrier       read the shipments it carries; record custody events on them
auditor       read; read, export and verify its organisation's part of the audit trail (as admin may too)
============  =======================================================================================

A shipment is visible to its parties only (shipper, carriers of its legs, receiver); to anyone else it does not
exist (404, never 403, so its existence is not disclosed).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Literal

import msgspec

__all__ = [
    "OPERATOR",
    "ROLES",
    "Action",
    "ApiToken",
    "Principal",
    "Role",
    "allowed",
    "token_sha256",
]

Role = Literal["admin", "logistics", "pharmacist", "carrier", "auditor"]
ROLES: tuple[Role, ...] = ("admin", "logistics", "pharmacist", "carrier", "auditor")

Action = Literal["read", "manage", "setup", "custody", "acknowledge", "decide", "audit"]

_GRANTS: dict[Action, frozenset[Role]] = {
    "read": frozenset(ROLES),
    "manage": frozenset({"admin"}),
    "setup": frozenset({"admin", "logistics"}),
    "custody": frozenset({"admin", "logistics", "carrier"}),
    "acknowledge": frozenset({"admin", "logistics", "pharmacist"}),
    "decide": frozenset({"pharmacist"}),
    "audit": frozenset({"admin", "auditor"}),
}


def token_sha256(token: str) -> str:
    """How a token is stored: the hex SHA-256 of its text (tokens carry 256 random bits)."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiToken(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    organisation_id: int
    role: Role
    name: str
    created_at: datetime
    revoked_at: datetime | None


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """The authenticated caller. ``organisation_id`` is ``None`` for the platform operator only.

    A caller is an API token (``token_id``) or a person signed in to the portal (``user_id``, with the name and
    email the audit trail, acknowledgements and custody signatures carry); both have the same role and scoping.
    """

    organisation_id: int | None
    role: Role | None
    token_id: int | None
    user_id: int | None = None
    user_name: str | None = None
    user_email: str | None = None
    session_sha256: str | None = None
    """The portal session the person acts through (its SHA-256), for the signing rules of 21 CFR 11.200."""

    @property
    def is_operator(self) -> bool:
        return self.organisation_id is None

    @property
    def actor(self) -> str:
        """How the audit trail names the caller."""
        if self.organisation_id is None:
            return "operator"
        if self.user_id is not None:
            return f"{self.user_name} <{self.user_email}> (org:{self.organisation_id}/user:{self.user_id}, {self.role})"
        return f"org:{self.organisation_id}/token:{self.token_id}({self.role})"

    def acts_for(self, organisation_id: int) -> bool:
        """Whether the caller may act on behalf of ``organisation_id``."""
        return self.organisation_id is None or self.organisation_id == organisation_id

    def sees(self, parties: frozenset[int]) -> bool:
        """Whether a record with these parties exists for the caller."""
        return self.organisation_id is None or self.organisation_id in parties


OPERATOR = Principal(organisation_id=None, role=None, token_id=None)


def allowed(principal: Principal, action: Action) -> bool:
    """Whether the caller's role grants ``action`` (the operator's always does)."""
    if principal.organisation_id is None:
        return True
    return principal.role in _GRANTS[action]
