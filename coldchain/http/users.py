"""People and sessions: an organisation's admin manages its users; anyone signs in and out.

``POST /v1/session`` signs in with an email and a password and sets the session cookie (``HttpOnly``,
``SameSite=Lax``, ``Secure`` unless the service is reached over plain HTTP on the loopback address); the answer
carries the CSRF token that state-changing requests made with the session must send. The portal's sign-in page
uses the same use case.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import Cookie
from litestar.params import JSONBody
from msgspec import Meta

from coldchain.domain.access import Role
from coldchain.domain.users import LoginLimits, User
from coldchain.http.auth import SESSION_COOKIE, check_csrf, request_session
from coldchain.http.deps import NowDep, PrincipalDep, SettingsDep, StoreDep
from coldchain.http.errors import ApiError
from coldchain.http.openapi import BEARER, SESSION, errors
from coldchain.http.wire import BodyIn, PathId
from coldchain.services import users as use_cases
from coldchain.settings import Settings
from coldchain.storage import Store

__all__ = ["SessionApi", "UserApi", "client_address", "end_session_cookie", "session_cookie", "sign_in"]

Name = Annotated[str, Meta(min_length=1, max_length=200)]
Email = Annotated[str, Meta(min_length=3, max_length=254)]
Password = Annotated[str, Meta(min_length=1, max_length=use_cases.MAX_PASSWORD_CHARS)]
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


class UserIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    role: Role
    name: Name
    email: Email
    password: Password


class PasswordIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    password: Password


class SignInIn(BodyIn, frozen=True, kw_only=True, forbid_unknown_fields=True):
    email: Email
    password: Password


class UserOut(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    organisation_id: int
    role: Role
    name: str
    email: str
    disabled_at: datetime | None
    created_at: datetime


class SessionOut(msgspec.Struct, frozen=True, kw_only=True):
    user: UserOut
    csrf_token: str
    """Send it as ``X-CSRF-Token`` with every state-changing request made with this session."""


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        organisation_id=user.organisation_id,
        role=user.role,
        name=user.name,
        email=user.email,
        disabled_at=user.disabled_at,
        created_at=user.created_at,
    )


def client_address(request: Request[Any, Any, Any]) -> str:
    """The client's address as the service sees it (behind a proxy: the proxy's, unless the server is told to
    trust forwarded headers, as uvicorn's ``--forwarded-allow-ips`` does)."""
    return request.client.host if request.client else "unknown"


def _secure(request: Request[Any, Any, Any]) -> bool:
    return not (request.url.scheme == "http" and (request.url.hostname or "") in _LOOPBACK)


def session_cookie(request: Request[Any, Any, Any], session_id: str, settings: Settings) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value=session_id,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        max_age=int(settings.session_lifetime_s),
    )


def end_session_cookie(request: Request[Any, Any, Any]) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE, value="", path="/", httponly=True, samesite="lax", secure=_secure(request), max_age=0
    )


async def sign_in(
    request: Request[Any, Any, Any], store: Store, settings: Settings, *, email: str, password: str, now: datetime
) -> use_cases.SignIn:
    """Sign in with the settings' limits and lifetime, ending the session the request came with (a new id at every
    sign-in). :class:`~coldchain.services.users.SignInRefused` when refused."""
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        await use_cases.sign_out(store, old, now=now)
    limits = LoginLimits(
        per_account=settings.login_max_failures,
        per_client=settings.login_max_failures_per_client,
        window=timedelta(seconds=settings.login_failure_window_s),
    )
    return await use_cases.sign_in(
        store,
        email=email,
        password=password,
        client=client_address(request),
        limits=limits,
        lifetime=timedelta(seconds=settings.session_lifetime_s),
        now=now,
    )


class SessionApi(Controller):
    path = "/v1/session"
    tags = ["users"]  # noqa: RUF012 (Litestar reads it as a class attribute)

    @post(
        "/",
        status_code=201,
        summary="Sign in: start a session (cookie) and get its CSRF token",
        responses=errors(401, 422),
        security=[],
    )
    async def start(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[SignInIn],
        store: StoreDep,
        settings: SettingsDep,
        now: NowDep,
    ) -> Response[SessionOut]:
        try:
            signed = await sign_in(request, store, settings, email=data.email, password=data.password, now=now)
        except use_cases.SignInRefused as refused:
            if refused.locked:
                raise ApiError(429, "too_many_requests", str(refused)) from None
            raise ApiError(401, "unauthenticated", str(refused)) from None
        return Response(
            SessionOut(user=user_out(signed.user), csrf_token=signed.csrf_token),
            status_code=201,
            cookies=[session_cookie(request, signed.session_id, settings)],
        )

    @get(
        "/",
        summary="The signed-in user of this session, and the session's CSRF token",
        responses=errors(401),
        security=SESSION,
    )
    async def show(self, request: Request[Any, Any, Any], store: StoreDep) -> SessionOut:
        found = await request_session(request, request.app.state)
        if found is None:
            raise ApiError(401, "unauthenticated", "no session: sign in first")
        principal, csrf_token = found
        assert principal.user_id is not None
        async with store.transaction() as tx:
            user = await tx.get_user(principal.user_id)
        assert user is not None
        return SessionOut(user=user_out(user), csrf_token=csrf_token)

    @delete(
        "/",
        status_code=200,
        summary="Sign out: end the session on the server",
        responses=errors(401, 403),
        security=SESSION,
    )
    async def end(self, request: Request[Any, Any, Any], store: StoreDep, now: NowDep) -> Response[dict[str, str]]:
        """Judged by the session cookie alone (an API token has no session to end), with its CSRF token."""
        found = await request_session(request, request.app.state)
        session_id = request.cookies.get(SESSION_COOKIE)
        if found is None or not session_id:
            raise ApiError(401, "unauthenticated", "no session to end: sign out ends a portal session")
        principal, csrf_token = found
        await check_csrf(request, csrf_token)
        await use_cases.sign_out(store, session_id, now=now)
        return Response({"signed_out": principal.actor}, cookies=[end_session_cookie(request)])


class UserApi(Controller):
    path = "/v1/organisations/{organisation_id:int}/users"
    tags = ["users"]  # noqa: RUF012 (Litestar reads it as a class attribute)
    security = BEARER

    @get("/", summary="The organisation's users (its admins, and the operator)", responses=errors(401, 403, 404))
    async def list_users(self, organisation_id: PathId, store: StoreDep, principal: PrincipalDep) -> list[UserOut]:
        return [user_out(u) for u in await use_cases.list_users(store, principal, organisation_id)]

    @post(
        "/",
        status_code=201,
        summary="Add a user with a role and a first password",
        responses=errors(401, 403, 404, 409, 422),
    )
    async def create(
        self, organisation_id: PathId, data: JSONBody[UserIn], store: StoreDep, principal: PrincipalDep, now: NowDep
    ) -> UserOut:
        user = await use_cases.create_user(
            store,
            principal,
            organisation_id=organisation_id,
            role=data.role,
            name=data.name,
            email=data.email,
            password=data.password,
            now=now,
        )
        return user_out(user)

    @post(
        "/{user_id:int}/disable",
        status_code=200,
        summary="Disable a user and end their sessions",
        description="Refused (409) for the organisation's last active admin user when it has no admin token left,"
        " and (422) for the caller themself.",
        responses=errors(401, 403, 404, 409, 422),
    )
    async def disable(
        self, organisation_id: PathId, user_id: PathId, store: StoreDep, principal: PrincipalDep, now: NowDep
    ) -> UserOut:
        return user_out(
            await use_cases.disable_user(store, principal, organisation_id=organisation_id, user_id=user_id, now=now)
        )

    @post(
        "/{user_id:int}/enable",
        status_code=200,
        summary="Let a disabled user sign in again",
        responses=errors(401, 403, 404, 409),
    )
    async def enable(
        self, organisation_id: PathId, user_id: PathId, store: StoreDep, principal: PrincipalDep, now: NowDep
    ) -> UserOut:
        return user_out(
            await use_cases.enable_user(store, principal, organisation_id=organisation_id, user_id=user_id, now=now)
        )

    @post(
        "/{user_id:int}/password",
        status_code=200,
        summary="Set a new password and end the user's sessions",
        responses=errors(401, 403, 404, 409, 422),
    )
    async def reset_password(
        self,
        organisation_id: PathId,
        user_id: PathId,
        data: JSONBody[PasswordIn],
        store: StoreDep,
        principal: PrincipalDep,
        now: NowDep,
    ) -> UserOut:
        user = await use_cases.reset_password(
            store, principal, organisation_id=organisation_id, user_id=user_id, password=data.password, now=now
        )
        return user_out(user)
