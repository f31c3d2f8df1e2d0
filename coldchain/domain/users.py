"""People of an organisation and their portal sessions: who they are, and the rules of signing in.

A user belongs to one organisation with one role (see :mod:`coldchain.domain.access`); a disabled user keeps its
record (the audit trail names it) but may not sign in. A session lasts while it is used: it ends after
``idle`` without a request, and at the latest ``lifetime`` after it began (OWASP Session Management Cheat Sheet:
idle and absolute timeouts). Failed sign-ins lock an account, and a client, out for a while once they pass a
limit within a window (OWASP Authentication Cheat Sheet, "Account lockout"; NIST SP 800-63B §5.2.2).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import msgspec

from coldchain.domain.access import ApiToken, Role

__all__ = ["LoginLimits", "Session", "User", "has_an_admin", "locked_out", "normalise_email", "session_valid"]


class User(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    organisation_id: int
    role: Role
    name: str
    email: str
    disabled_at: datetime | None
    created_at: datetime

    @property
    def active(self) -> bool:
        return self.disabled_at is None


class Session(msgspec.Struct, frozen=True, kw_only=True):
    """A stored session; its id is known only by its SHA-256."""

    id_sha256: str
    user_id: int
    csrf_token: str
    client: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    ended_at: datetime | None


class LoginLimits(msgspec.Struct, frozen=True, kw_only=True):
    """At most ``per_account`` failed sign-ins for one email, and ``per_client`` from one client, within
    ``window``; past either, sign-in is refused until the oldest failure leaves the window."""

    per_account: int
    per_client: int
    window: timedelta


def normalise_email(email: str) -> str:
    """One spelling per address: trimmed and lower-case."""
    return email.strip().lower()


def session_valid(session: Session, *, now: datetime, idle: timedelta) -> bool:
    """Whether the session may still be used at ``now``: not ended, not past its lifetime, not idle too long."""
    return session.ended_at is None and now < session.expires_at and now - session.last_seen_at < idle


def locked_out(failures_of_account: int, failures_of_client: int, limits: LoginLimits) -> bool:
    """Whether a sign-in must be refused, given the failures counted within the window."""
    return failures_of_account >= limits.per_account or failures_of_client >= limits.per_client


def has_an_admin(tokens: Iterable[ApiToken], users: Iterable[User]) -> bool:
    """Whether an organisation with these tokens and users can still manage itself: an unrevoked admin token or an
    active admin user. Revoking or disabling the last of them would lock it out of its own settings until the
    platform operator stepped in, so the services refuse it."""
    return any(t.role == "admin" and t.revoked_at is None for t in tokens) or any(
        u.role == "admin" and u.active for u in users
    )
