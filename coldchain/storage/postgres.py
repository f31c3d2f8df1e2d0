"""PostgresStore: the production engine (asyncpg connection pool).

Readings are written in bulk: COPY (binary) into a per-connection temporary staging table, then one
``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` moves them into ``readings``, so repeats are ignored. Measured
against one ``INSERT ... SELECT FROM unnest(...)`` per batch, this was about a quarter faster.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from coldchain.domain.readings import Reading
from coldchain.storage._sql import SqlTransaction, load_queries
from coldchain.storage.base import ConnectionUse, Engine, Transaction
from coldchain.storage.migrations import MIGRATIONS_TABLE, discover_migrations, pending_migrations
from coldchain.storage.portal import BUCKET_SELECT

__all__ = ["PostgresStore"]


def _advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


MIGRATION_LOCK = _advisory_key("coldchain:migrations")
AUDIT_LOCK = _advisory_key("coldchain:audit_log")

_STAGE_COLUMNS = (
    "seq", "device_time", "utc_offset_min", "temperature_c", "humidity_pct", "pressure_kpa",
    "latitude", "longitude", "battery_pct",
)  # fmt: skip

# A per-connection staging table: COPY fills it (the fastest way in), one INSERT moves the rows on.
_CREATE_STAGE = """
CREATE TEMP TABLE reading_stage (
    seq BIGINT, device_time TIMESTAMPTZ, utc_offset_min SMALLINT, temperature_c DOUBLE PRECISION,
    humidity_pct DOUBLE PRECISION, pressure_kpa DOUBLE PRECISION, latitude DOUBLE PRECISION,
    longitude DOUBLE PRECISION, battery_pct DOUBLE PRECISION
) ON COMMIT DELETE ROWS
"""

_MOVE_STAGE = """
WITH staged AS (DELETE FROM reading_stage RETURNING *)
INSERT INTO readings (tracker_id, seq, device_time, utc_offset_min, received_at, temperature_c, humidity_pct,
                      pressure_kpa, latitude, longitude, battery_pct)
SELECT $1, seq, device_time, utc_offset_min, $2, temperature_c, humidity_pct, pressure_kpa,
       latitude, longitude, battery_pct
FROM staged
ON CONFLICT DO NOTHING
RETURNING seq
"""


async def _prepare_connection(conn: asyncpg.Connection) -> None:
    """Once per pooled connection: the staging table survives the pool's reset between uses."""
    await conn.execute(_CREATE_STAGE)


_BUCKET_SQL = BUCKET_SELECT.format(
    bucket="floor(extract(epoch FROM r.device_time) / $1)::bigint", shipment_id="$2", start="$3", end="$4"
)


class PostgresTransaction(SqlTransaction):
    async def _bucket_rows(
        self, shipment_id: int, *, start: datetime, end: datetime, seconds: int
    ) -> list[tuple[Any, ...]]:
        rows = await self._conn.fetch(_BUCKET_SQL, float(seconds), shipment_id, start, end)
        return [tuple(row) for row in rows]

    def _time_in(self, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("naive datetime: storage takes aware datetimes only")
        return value

    def _time_out(self, value: Any) -> datetime:
        result: datetime = value.astimezone(UTC)
        return result

    def _date_in(self, value: date) -> date:
        return value

    def _date_out(self, value: Any) -> date:
        result: date = value
        return result

    async def _lock(self, name: str) -> None:
        await self._conn.execute("SELECT pg_advisory_xact_lock($1)", _advisory_key(f"coldchain:{name}"))

    async def _try_lock(self, name: str) -> bool:
        taken = await self._conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _advisory_key(f"coldchain:{name}"))
        return bool(taken)

    async def _lock_audit_chain(self) -> None:
        await self._conn.execute("SELECT pg_advisory_xact_lock($1)", AUDIT_LOCK)

    async def _lock_sync_state(self, tracker_id: int) -> None:
        await self._conn.execute("SELECT 1 FROM tracker_sync_state WHERE tracker_id = $1 FOR UPDATE", tracker_id)

    async def insert_readings(
        self, tracker_id: int, readings: Sequence[Reading], *, received_at: datetime
    ) -> list[int]:
        if not readings:
            return []
        await self._conn.copy_records_to_table(
            "reading_stage",
            records=[
                (
                    r.seq,
                    self._time_in(r.device_time),
                    r.utc_offset_min,
                    r.temperature_c,
                    r.humidity_pct,
                    r.pressure_kpa,
                    r.latitude,
                    r.longitude,
                    r.battery_pct,
                )
                for r in readings
            ],
            columns=_STAGE_COLUMNS,
        )
        rows = await self._conn.fetch(_MOVE_STAGE, tracker_id, self._time_in(received_at))
        return [row[0] for row in rows]


class PostgresStore:
    """The :class:`~coldchain.storage.base.Store` on a PostgreSQL database."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._queries = load_queries("asyncpg")

    @property
    def engine(self) -> Engine:
        return "postgresql"

    @property
    def pool(self) -> asyncpg.Pool:
        return self._pool

    @classmethod
    async def open(cls, url: str, *, pool_size: int = 10, migrate: bool = True) -> PostgresStore:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=pool_size, init=_prepare_connection)
        store = cls(pool)
        if migrate:
            try:
                await store.migrate()
            except BaseException:
                await pool.close()
                raise
        return store

    async def migrate(self) -> list[str]:
        """Apply pending migrations in one transaction under an advisory lock; returns those applied."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
            await conn.execute(
                f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
                " version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " checksum TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
            )
            applied = {
                row["version"]: row["checksum"]
                for row in await conn.fetch(f"SELECT version, checksum FROM {MIGRATIONS_TABLE}")
            }
            pending = pending_migrations(discover_migrations("postgresql"), applied)
            for migration in pending:
                await conn.execute(migration.sql)
                await conn.execute(
                    f"INSERT INTO {MIGRATIONS_TABLE} (version, name, checksum, applied_at) VALUES ($1, $2, $3, $4)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                    datetime.now(UTC),
                )
            return [migration.label for migration in pending]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._pool.acquire() as conn, conn.transaction():
            yield PostgresTransaction(conn, self._queries)

    async def ping(self) -> bool:
        try:
            async with self._pool.acquire(timeout=2) as conn:
                return bool(await conn.fetchval("SELECT 1", timeout=2) == 1)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return False

    async def pending_migrations(self) -> list[str]:
        async with self._pool.acquire() as conn:
            exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", MIGRATIONS_TABLE)
            rows = await conn.fetch(f"SELECT version, checksum FROM {MIGRATIONS_TABLE}") if exists else []
        applied = {row["version"]: row["checksum"] for row in rows}
        return [m.label for m in pending_migrations(discover_migrations("postgresql"), applied)]

    def connections(self) -> ConnectionUse:
        size, idle = self._pool.get_size(), self._pool.get_idle_size()
        return ConnectionUse(in_use=size - idle, idle=idle, max=self._pool.get_max_size())

    async def close(self) -> None:
        if not self._pool.is_closing():
            await self._pool.close()
