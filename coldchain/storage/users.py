"""Records of people: users of organisations (with their argon2id password hashes), their server-side sessions,
and failed sign-ins counted for lock-outs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from coldchain.domain.access import Role
from coldchain.domain.users import Session, User
from coldchain.storage._sqlbase import SqlBase
from coldchain.storage.errors import AlreadyExists

__all__ = ["UserRecords", "UsersSql"]


class UserRecords(Protocol):
    async def create_user(
        self, *, organisation_id: int, role: Role, name: str, email: str, password_hash: str, now: datetime
    ) -> User:
        """:class:`AlreadyExists` when a user already has this email (emails are unique across the service)."""
        ...

    async def get_user(self, user_id: int) -> User | None: ...

    async def user_by_email(self, email: str) -> tuple[User, str] | None:
        """The user with this (normalised) email and its password hash."""
        ...

    async def users_of_organisation(self, organisation_id: int) -> list[User]: ...

    async def set_user_disabled(self, user_id: int, disabled_at: datetime | None, *, now: datetime) -> User | None: ...

    async def set_user_password(self, user_id: int, password_hash: str, *, now: datetime) -> User | None: ...

    async def create_session(
        self, *, id_sha256: str, user_id: int, csrf_token: str, client: str, now: datetime, expires_at: datetime
    ) -> None: ...

    async def get_session(self, id_sha256: str) -> Session | None: ...

    async def touch_session(self, id_sha256: str, *, now: datetime) -> None: ...

    async def end_session(self, id_sha256: str, *, now: datetime) -> None: ...

    async def end_sessions_of_user(self, user_id: int, *, now: datetime) -> None: ...

    async def forget_sessions_ended_before(self, before: datetime, *, idle: timedelta) -> int:
        """Delete the sessions that ended before ``before``: signed out or ended by an admin, past their lifetime,
        or idle for ``idle`` (their last request was that long before it). Returns how many."""
        ...

    async def record_login_failure(self, *, email: str, client: str, now: datetime) -> None: ...

    async def login_failures(self, *, email: str, client: str, since: datetime) -> tuple[int, int]:
        """Failed sign-ins since ``since``: for this email, and from this client."""
        ...

    async def clear_login_failures(self, email: str) -> None: ...

    async def forget_login_failures_before(self, before: datetime) -> None:
        """Drop failures too old to count (the audit trail keeps every one)."""
        ...


class UsersSql(SqlBase):
    def _user(self, row: Any) -> User:
        role: Role = row["role"]
        return User(
            id=row["id"],
            organisation_id=row["organisation_id"],
            role=role,
            name=row["name"],
            email=row["email"],
            disabled_at=None if row["disabled_at"] is None else self._time_out(row["disabled_at"]),
            created_at=self._time_out(row["created_at"]),
        )

    async def create_user(
        self, *, organisation_id: int, role: Role, name: str, email: str, password_hash: str, now: datetime
    ) -> User:
        row = await self._q.insert_user(
            self._conn,
            organisation_id=organisation_id,
            role=role,
            name=name,
            email=email,
            password_hash=password_hash,
            created_at=self._time_in(now),
        )
        if row is None:
            raise AlreadyExists(f"a user with email {email!r} already exists")
        return self._user(row)

    async def get_user(self, user_id: int) -> User | None:
        row = await self._q.get_user(self._conn, id=user_id)
        return None if row is None else self._user(row)

    async def user_by_email(self, email: str) -> tuple[User, str] | None:
        row = await self._q.user_by_email(self._conn, email=email)
        return None if row is None else (self._user(row), row["password_hash"])

    async def users_of_organisation(self, organisation_id: int) -> list[User]:
        rows = self._q.users_of_organisation(self._conn, organisation_id=organisation_id)
        return [self._user(row) async for row in rows]

    async def set_user_disabled(self, user_id: int, disabled_at: datetime | None, *, now: datetime) -> User | None:
        row = await self._q.set_user_disabled(
            self._conn,
            id=user_id,
            disabled_at=None if disabled_at is None else self._time_in(disabled_at),
            now=self._time_in(now),
        )
        return None if row is None else self._user(row)

    async def set_user_password(self, user_id: int, password_hash: str, *, now: datetime) -> User | None:
        row = await self._q.set_user_password(
            self._conn, id=user_id, password_hash=password_hash, now=self._time_in(now)
        )
        return None if row is None else self._user(row)

    async def create_session(
        self, *, id_sha256: str, user_id: int, csrf_token: str, client: str, now: datetime, expires_at: datetime
    ) -> None:
        await self._q.insert_session(
            self._conn,
            id_sha256=id_sha256,
            user_id=user_id,
            csrf_token=csrf_token,
            client=client,
            created_at=self._time_in(now),
            expires_at=self._time_in(expires_at),
        )

    async def get_session(self, id_sha256: str) -> Session | None:
        row = await self._q.get_session(self._conn, id_sha256=id_sha256)
        if row is None:
            return None
        return Session(
            id_sha256=row["id_sha256"],
            user_id=row["user_id"],
            csrf_token=row["csrf_token"],
            client=row["client"],
            created_at=self._time_out(row["created_at"]),
            last_seen_at=self._time_out(row["last_seen_at"]),
            expires_at=self._time_out(row["expires_at"]),
            ended_at=None if row["ended_at"] is None else self._time_out(row["ended_at"]),
        )

    async def touch_session(self, id_sha256: str, *, now: datetime) -> None:
        await self._q.touch_session(self._conn, id_sha256=id_sha256, now=self._time_in(now))

    async def end_session(self, id_sha256: str, *, now: datetime) -> None:
        await self._q.end_session(self._conn, id_sha256=id_sha256, now=self._time_in(now))

    async def end_sessions_of_user(self, user_id: int, *, now: datetime) -> None:
        await self._q.end_sessions_of_user(self._conn, user_id=user_id, now=self._time_in(now))

    async def forget_sessions_ended_before(self, before: datetime, *, idle: timedelta) -> int:
        rows = self._q.forget_sessions_ended_before(
            self._conn, before=self._time_in(before), idle_before=self._time_in(before - idle)
        )
        return len([row async for row in rows])

    async def record_login_failure(self, *, email: str, client: str, now: datetime) -> None:
        await self._q.insert_login_failure(self._conn, email=email, client=client, at=self._time_in(now))

    async def login_failures(self, *, email: str, client: str, since: datetime) -> tuple[int, int]:
        of_email = await self._q.login_failures_of_email(self._conn, email=email, since=self._time_in(since))
        of_client = await self._q.login_failures_of_client(self._conn, client=client, since=self._time_in(since))
        return int(of_email), int(of_client)

    async def clear_login_failures(self, email: str) -> None:
        await self._q.clear_login_failures(self._conn, email=email)

    async def forget_login_failures_before(self, before: datetime) -> None:
        await self._q.forget_login_failures_before(self._conn, before=self._time_in(before))
