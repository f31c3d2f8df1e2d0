"""Use cases of people: users of an organisation, signing in and out of the portal, and the session a request
carries.

Passwords are hashed with argon2id (RFC 9106; argon2-cffi's defaults, its "low memory" profile) and never stored
or logged as text. A sign-in is refused the same way whether the email is unknown, the password wrong or the
user disabled, and takes as long (an unknown email is checked against a stand-in hash), so nobody learns which
emails exist. Failures are counted per email and per client and written to the audit trail; past the limits
sign-in is refused (:class:`SignInRefused` with ``locked``) until the window has passed.

A session id is 256 random bits, given to the browser once and stored as its SHA-256; a new one is made at every
sign-in (never reused from before it: OWASP, session fixation), and signing out ends it on the server.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from datetime import datetime, timedelta

import msgspec
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from coldchain.domain.access import Principal, Role
from coldchain.domain.users import LoginLimits, User, has_an_admin, locked_out, normalise_email, session_valid
from coldchain.services.access import require
from coldchain.services.errors import Conflict, Forbidden, Invalid, NotFound
from coldchain.storage import Store, Transaction

__all__ = [
    "MAX_PASSWORD_CHARS",
    "MIN_PASSWORD_CHARS",
    "SignIn",
    "SignInRefused",
    "SignatureRefused",
    "check_signer",
    "create_user",
    "disable_user",
    "enable_user",
    "forget_ended_sessions",
    "list_users",
    "reset_password",
    "session_principal",
    "sign_in",
    "sign_out",
]

MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 256
#: A session's last-seen time is written at most this often (every request would be a write).
_TOUCH_EVERY = timedelta(minutes=1)
#: The audit trail's name for the portal's own sign-in checks.
PORTAL_ACTOR = "coldchain:portal"

_hasher = PasswordHasher()
_STAND_IN = _hasher.hash("a password nobody has: makes an unknown email cost the same as a known one")


class SignInRefused(Exception):
    """Sign-in refused: wrong email or password (``locked`` false), or too many failures (``locked`` true)."""

    def __init__(self, message: str, *, locked: bool) -> None:
        super().__init__(message)
        self.locked = locked


class SignatureRefused(Forbidden):
    """An electronic signature refused: the password (or, at a session's first signing, the user id) is not the
    signer's, or too many attempts failed. The attempt is in the audit trail."""


class SignIn(msgspec.Struct, frozen=True, kw_only=True):
    """A new session: its id (for the cookie; only its digest is stored) and its CSRF token."""

    session_id: str
    csrf_token: str
    user: User


def _session_sha256(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def check_password(password: str) -> None:
    """:class:`Invalid` unless the password is long enough to be worth hashing (NIST SP 800-63B §5.1.1.2)."""
    if len(password) < MIN_PASSWORD_CHARS:
        raise Invalid(f"password: at least {MIN_PASSWORD_CHARS} characters")
    if len(password) > MAX_PASSWORD_CHARS:
        raise Invalid(f"password: at most {MAX_PASSWORD_CHARS} characters")


async def _hash(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def _verify(password_hash: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


async def _audit(
    tx: Transaction, actor: str, action: str, subject: str, detail: dict[str, object], now: datetime
) -> None:
    await tx.append_audit(
        actor=actor, action=action, subject=subject, detail=msgspec.json.encode(detail).decode(), now=now
    )


def _check_manages(principal: Principal, organisation_id: int) -> None:
    if not principal.acts_for(organisation_id):
        raise NotFound(f"no organisation {organisation_id}")
    require(principal, "manage")


async def create_user(
    store: Store,
    principal: Principal,
    *,
    organisation_id: int,
    role: Role,
    name: str,
    email: str,
    password: str,
    now: datetime,
) -> User:
    """A new user of ``organisation_id`` (by its admin, or the operator). :class:`AlreadyExists` for an email
    already in use anywhere in the service."""
    _check_manages(principal, organisation_id)
    check_password(password)
    address = normalise_email(email)
    if "@" not in address.strip("@") or len(address) > 254:
        raise Invalid("email: an address like name@example.org")
    if not name.strip():
        raise Invalid("name: say who the user is")
    password_hash = await _hash(password)
    async with store.transaction() as tx:
        if await tx.get_organisation(organisation_id) is None:
            raise NotFound(f"no organisation {organisation_id}")
        user = await tx.create_user(
            organisation_id=organisation_id,
            role=role,
            name=name.strip(),
            email=address,
            password_hash=password_hash,
            now=now,
        )
        detail = {"role": role, "name": user.name, "email": address, "organisation": organisation_id}
        await _audit(tx, principal.actor, "user.created", f"user:{user.id}", detail, now)
    return user


async def list_users(store: Store, principal: Principal, organisation_id: int) -> list[User]:
    _check_manages(principal, organisation_id)
    async with store.transaction() as tx:
        return await tx.users_of_organisation(organisation_id)


async def _user_of(tx: Transaction, organisation_id: int, user_id: int) -> User:
    user = await tx.get_user(user_id)
    if user is None or user.organisation_id != organisation_id:
        raise NotFound(f"organisation {organisation_id} has no user {user_id}")
    return user


async def disable_user(
    store: Store, principal: Principal, *, organisation_id: int, user_id: int, now: datetime
) -> User:
    """Disable a user (idempotent) and end its sessions; the record stays, as the audit trail names it. The last
    way into the organisation's settings (its last active admin user, with no admin token left) stays:
    :class:`Conflict`."""
    _check_manages(principal, organisation_id)
    async with store.transaction() as tx:
        await tx.lock_api_tokens(organisation_id)  # the same lock as revoking a token: one admin check at a time
        user = await _user_of(tx, organisation_id, user_id)
        if principal.user_id == user_id:
            raise Invalid("an admin cannot disable themself (ask another admin of the organisation)")
        if user.active and user.role == "admin":
            others = [u for u in await tx.users_of_organisation(organisation_id) if u.id != user_id]
            if not has_an_admin(await tx.api_tokens(organisation_id), others):
                raise Conflict(
                    f"user {user_id} is the last active admin user of organisation {organisation_id}, which has no"
                    " admin token: disabling them would lock the organisation out of its own settings; add another"
                    " admin user or issue an admin token first"
                )
        disabled = await tx.set_user_disabled(user_id, user.disabled_at or now, now=now)
        assert disabled is not None
        await tx.end_sessions_of_user(user_id, now=now)
        await _audit(tx, principal.actor, "user.disabled", f"user:{user_id}", {"email": user.email}, now)
    return disabled


async def enable_user(store: Store, principal: Principal, *, organisation_id: int, user_id: int, now: datetime) -> User:
    _check_manages(principal, organisation_id)
    async with store.transaction() as tx:
        user = await _user_of(tx, organisation_id, user_id)
        enabled = await tx.set_user_disabled(user_id, None, now=now)
        assert enabled is not None
        await _audit(tx, principal.actor, "user.enabled", f"user:{user_id}", {"email": user.email}, now)
    return enabled


async def reset_password(
    store: Store, principal: Principal, *, organisation_id: int, user_id: int, password: str, now: datetime
) -> User:
    """Set a new password for the user (given to them by the admin) and end the user's sessions."""
    _check_manages(principal, organisation_id)
    check_password(password)
    password_hash = await _hash(password)
    async with store.transaction() as tx:
        user = await _user_of(tx, organisation_id, user_id)
        changed = await tx.set_user_password(user_id, password_hash, now=now)
        assert changed is not None
        await tx.end_sessions_of_user(user_id, now=now)
        await tx.clear_login_failures(user.email)
        await _audit(tx, principal.actor, "user.password_reset", f"user:{user_id}", {"email": user.email}, now)
    return changed


async def sign_in(
    store: Store,
    *,
    email: str,
    password: str,
    client: str,
    limits: LoginLimits,
    lifetime: timedelta,
    now: datetime,
) -> SignIn:
    """A new session for the user with this email and password; :class:`SignInRefused` otherwise."""
    address = normalise_email(email)[:254]
    async with store.transaction() as tx:
        failures = await tx.login_failures(email=address, client=client, since=now - limits.window)
        found = await tx.user_by_email(address)
    if locked_out(*failures, limits):
        async with store.transaction() as tx:
            detail = {"email": address, "client": client, "locked": True}
            await _audit(tx, PORTAL_ACTOR, "user.sign_in_refused", f"email:{address}", detail, now)
        minutes = round(limits.window.total_seconds() / 60)
        raise SignInRefused(
            f"too many failed sign-ins: try again in up to {minutes} minutes, or ask an admin to reset the password",
            locked=True,
        )
    user, password_hash = found if found is not None else (None, _STAND_IN)
    matches = await _verify(password_hash, password[:MAX_PASSWORD_CHARS])
    if user is None or not matches or not user.active:
        async with store.transaction() as tx:
            await tx.forget_login_failures_before(now - limits.window)
            await tx.record_login_failure(email=address, client=client, now=now)
            detail = {"email": address, "client": client, "locked": False}
            subject = f"user:{user.id}" if user is not None else f"email:{address}"
            await _audit(tx, PORTAL_ACTOR, "user.sign_in_failed", subject, detail, now)
        raise SignInRefused("the email or the password is not right", locked=False)
    session_id, csrf_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    async with store.transaction() as tx:
        await tx.create_session(
            id_sha256=_session_sha256(session_id),
            user_id=user.id,
            csrf_token=csrf_token,
            client=client,
            now=now,
            expires_at=now + lifetime,
        )
        await tx.clear_login_failures(address)
        await _audit(tx, _actor(user), "user.signed_in", f"user:{user.id}", {"client": client}, now)
    return SignIn(session_id=session_id, csrf_token=csrf_token, user=user)


def _principal(user: User, session_sha256: str | None = None) -> Principal:
    return Principal(
        organisation_id=user.organisation_id,
        role=user.role,
        token_id=None,
        user_id=user.id,
        user_name=user.name,
        user_email=user.email,
        session_sha256=session_sha256,
    )


def _actor(user: User) -> str:
    return _principal(user).actor


async def session_principal(
    store: Store, session_id: str, *, idle: timedelta, now: datetime
) -> tuple[Principal, str] | None:
    """The signed-in user a session id names and the session's CSRF token; ``None`` for an unknown, ended,
    expired or idle session, or a disabled user."""
    digest = _session_sha256(session_id)
    async with store.transaction() as tx:
        session = await tx.get_session(digest)
        if session is None or not session_valid(session, now=now, idle=idle):
            return None
        user = await tx.get_user(session.user_id)
        if user is None or not user.active:
            return None
        if now - session.last_seen_at >= _TOUCH_EVERY:
            await tx.touch_session(digest, now=now)
    return _principal(user, digest), session.csrf_token


async def sign_out(store: Store, session_id: str, *, now: datetime) -> None:
    """End the session on the server (idempotent; an unknown id changes nothing)."""
    digest = _session_sha256(session_id)
    async with store.transaction() as tx:
        session = await tx.get_session(digest)
        if session is None or session.ended_at is not None:
            return
        await tx.end_session(digest, now=now)
        user = await tx.get_user(session.user_id)
        actor = PORTAL_ACTOR if user is None else _actor(user)
        await _audit(tx, actor, "user.signed_out", f"user:{session.user_id}", {}, now)


async def check_signer(
    store: Store,
    principal: Principal,
    *,
    email: str | None,
    password: str,
    client: str,
    limits: LoginLimits,
    subject: str,
    now: datetime,
) -> bool:
    """Check the two components of an electronic signature (21 CFR 11.200(a)(1)): at the first signing of a
    session, the user id (email) and the password; at later signings in the same session, the password (an email
    given must still be the signer's). Whether this is the session's first signing.

    A failure is counted like a failed sign-in (past the limits every signing is refused until the window has
    passed), written to the audit trail with ``subject`` (what was to be signed), and raises
    :class:`SignatureRefused`. The caller must be a person in a portal session: a token signs nothing.
    """
    if principal.user_id is None or principal.session_sha256 is None or principal.user_email is None:
        raise Forbidden("an electronic signature is a person's: sign in to the portal (an API token cannot sign)")
    address = principal.user_email
    async with store.transaction() as tx:
        first = await tx.session_signed_at(principal.session_sha256) is None
        failures = await tx.login_failures(email=address, client=client, since=now - limits.window)
        found = await tx.user_by_email(address)
    problem: str | None = None
    if locked_out(*failures, limits):
        problem = "too many failed attempts: wait, or ask an admin to reset the password"
    elif first and email is None:
        problem = "the first signature of a session needs your email (user id) and your password"
    elif email is not None and normalise_email(email) != address:
        problem = "the email is not the signed-in user's"
    elif found is None or not await _verify(found[1], password[:MAX_PASSWORD_CHARS]):
        problem = "the password is not right"
    if problem is None:
        return first
    async with store.transaction() as tx:
        await tx.forget_login_failures_before(now - limits.window)
        await tx.record_login_failure(email=address, client=client, now=now)
        detail = {"subject": subject, "problem": problem, "client": client, "first_of_session": first}
        await _audit(tx, principal.actor, "signature.refused", f"user:{principal.user_id}", detail, now)
    raise SignatureRefused(f"signature refused: {problem}; the attempt is recorded")


async def forget_ended_sessions(
    store: Store, *, now: datetime, retention: timedelta, idle: timedelta, failure_window: timedelta
) -> int:
    """Delete sessions that ended more than ``retention`` before ``now`` (signed out, ended by an admin, idle for
    ``idle``, or past their lifetime), and failed sign-ins older than ``failure_window``, which no longer count
    towards a lock-out. The audit trail keeps every sign-in, sign-out and failure. Returns the sessions deleted."""
    async with store.transaction() as tx:
        deleted = await tx.forget_sessions_ended_before(now - retention, idle=idle)
        await tx.forget_login_failures_before(now - failure_window)
    return deleted
